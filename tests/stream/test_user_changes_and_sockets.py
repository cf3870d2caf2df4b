"""Changing a user closes their sockets only when their access narrowed."""

from tests.stream.support import closed, connect, request

USERS = "/api/v1/orm/users"


async def test_renaming_yourself_keeps_your_sockets(client, make_account):
    """PATCH /users/me (a new name) drops the cached name but does not close the caller's
    WebSocket: a ping sent after the change is still answered, and /users/me shows the
    new name at once."""
    acct = await make_account()
    ws = await connect(client, acct.token)
    resp = await client.patch(f"{USERS}/me", json={"name": "New Name"}, headers=acct.headers)
    assert resp.status == 200, await resp.text()
    reply = await request(ws, "ping")
    assert reply["success"] is True
    me = await (await client.get(f"{USERS}/me", headers=acct.headers)).json()
    assert me["name"] == "New Name"
    await ws.close()


async def test_promotion_keeps_sockets_and_demotion_closes_them(client, make_account):
    """An admin promoting a user leaves their socket open; demoting them closes it with
    1008 'role changed' so they reconnect with today's rights."""
    admin = await make_account(role="admin")
    user = await make_account()
    ws = await connect(client, user.token)
    up = await client.patch(f"{USERS}/{user.user_id}", json={"role": "admin"},
                            headers=admin.headers)
    assert up.status == 200, await up.text()
    assert (await request(ws, "ping"))["success"] is True
    down = await client.patch(f"{USERS}/{user.user_id}", json={"role": "user"},
                              headers=admin.headers)
    assert down.status == 200, await down.text()
    assert await closed(ws) == (1008, "role changed")


async def test_disabling_closes_sockets(client, make_account):
    """Disabling a user closes their sockets with 1008 'user disabled'."""
    admin = await make_account(role="admin")
    user = await make_account()
    ws = await connect(client, user.token)
    resp = await client.patch(f"{USERS}/{user.user_id}", json={"is_active": False},
                              headers=admin.headers)
    assert resp.status == 200, await resp.text()
    assert await closed(ws) == (1008, "user disabled")
