"""/api/v1/orm/users: profile, admin management, and what disabling a user does."""

from __future__ import annotations

from tests.rest.support import api_key, call


async def test_me_answers_from_the_caller(client, make_account):
    """/users/me returns the caller's identity with the scopes of its credential."""
    user = await make_account(name="Ann")
    me = await call(client, "GET", "/users/me", user)
    assert me == {
        "user_id": user.user_id,
        "email": user.email,
        "name": "Ann",
        "role": "user",
        "is_active": True,
        "auth": "jwt",
        "scopes": ["read", "trade"],
    }
    key = await api_key(client, user, ["read"])
    me = await call(client, "GET", "/users/me", key)
    assert me["auth"] == "api_key" and me["scopes"] == ["read"]


async def test_me_needs_no_database_round_trip(client, make_account):
    """With the auth cache warm, /users/me answers while every Postgres connection of the
    pool is held elsewhere: the profile comes from the caller, not from a query."""
    import asyncio

    from fullon_gateway.keys import DB

    user = await make_account()
    await call(client, "GET", "/users/me", user)  # warms the auth cache
    pool = client.app[DB]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        resp = await asyncio.wait_for(
            client.get("/api/v1/orm/users/me", headers=user.headers), timeout=2)
        assert resp.status == 200
        assert (await resp.json())["user_id"] == user.user_id
    finally:
        for conn in held:
            await pool.release(conn)


async def test_update_me_changes_name_everywhere(client, make_account):
    """PATCH /users/me renames the caller; /users/me reflects it at once (cache invalidated)."""
    user = await make_account()
    body = await call(client, "PATCH", "/users/me", user, json={"name": "New Name"})
    assert body["name"] == "New Name"
    assert (await call(client, "GET", "/users/me", user))["name"] == "New Name"
    err = await call(client, "PATCH", "/users/me", user, 422, json={"name": "x" * 201})
    assert "name" in err["fields"]
    err = await call(client, "PATCH", "/users/me", user, 422, json={"role": "admin"})
    assert "role" in err["fields"]


async def test_user_management_is_admin_only(client, make_account):
    """A user gets 403 on /users; an admin lists, creates, reads and updates users."""
    user = await make_account()
    admin = await make_account("admin")
    await call(client, "GET", "/users", user, 403)
    await call(
        client,
        "POST",
        "/users",
        user,
        403,
        json={"email": "x@example.com", "password": "longenough"},
    )
    listed = await call(client, "GET", "/users", admin)
    assert {u["user_id"] for u in listed["items"]} == {user.user_id, admin.user_id}
    created = await call(
        client,
        "POST",
        "/users",
        admin,
        201,
        json={"email": "new@example.com", "password": "longenough", "name": "New"},
    )
    assert created["role"] == "user" and created["is_active"] is True
    await call(
        client,
        "POST",
        "/users",
        admin,
        409,
        json={"email": "NEW@example.com", "password": "longenough"},
    )
    err = await call(client, "POST", "/users", admin, 422, json={"email": "nope", "password": "x"})
    assert set(err["fields"]) == {"email", "password"}
    one = await call(client, "GET", f"/users/{user.user_id}", admin)
    assert one["email"] == user.email
    await call(client, "GET", "/users/999999", admin, 404)
    await call(client, "GET", "/users/abc", admin, 404)
    only_admins = await call(client, "GET", "/users", admin, params={"role": "admin"})
    assert [u["user_id"] for u in only_admins["items"]] == [admin.user_id]
    found = await call(client, "GET", "/users", admin, params={"q": "NEW@"})
    assert [u["email"] for u in found["items"]] == ["new@example.com"]


async def test_disabling_a_user_locks_them_out_at_once(client, make_account):
    """An admin disabling a user makes that user's token and keys fail with 401 immediately,
    and ends their sessions: re-enabling does not make the old tokens valid again."""
    user = await make_account()
    admin = await make_account("admin")
    key = await api_key(client, user, ["read"])
    await call(client, "GET", "/users/me", user)
    await call(client, "GET", "/users/me", key)
    body = await call(client, "PATCH", f"/users/{user.user_id}", admin, json={"is_active": False})
    assert body["is_active"] is False
    err = await call(client, "GET", "/users/me", user, 401)
    assert err["code"] == "user_disabled"
    await call(client, "GET", "/users/me", key, 401)
    await call(client, "PATCH", f"/users/{user.user_id}", admin, json={"is_active": True})
    # Re-enabled: the sessions that existed when they were disabled stay ended (their
    # access and refresh tokens are dead); API keys, not sessions, work again; and a
    # fresh login works.
    err = await call(client, "GET", "/users/me", user, 401)
    assert err["code"] == "session_revoked", err
    resp = await client.post("/api/v1/auth/refresh",
                             json={"refresh_token": user.refresh_token})
    assert resp.status == 401
    await call(client, "GET", "/users/me", key)
    resp = await client.post("/api/v1/auth/login",
                             json={"email": user.email, "password": user.password})
    assert resp.status == 200
    fresh = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
    assert (await client.get("/api/v1/orm/users/me", headers=fresh)).status == 200


async def test_role_change_takes_effect_immediately(client, make_account):
    """Promoting a user to admin gives their existing token admin powers at once, and back."""
    user = await make_account()
    admin = await make_account("admin")
    await call(client, "GET", "/users", user, 403)
    await call(client, "PATCH", f"/users/{user.user_id}", admin, json={"role": "admin"})
    await call(client, "GET", "/users", user)
    await call(client, "PATCH", f"/users/{user.user_id}", admin, json={"role": "user"})
    await call(client, "GET", "/users", user, 403)
    err = await call(client, "PATCH", f"/users/{user.user_id}", admin, 422, json={"role": "root"})
    assert "role" in err["fields"]


async def test_admin_cannot_lock_themselves_out(client, make_account):
    """An admin cannot disable, demote or delete their own account (409)."""
    admin = await make_account("admin")
    for body in ({"is_active": False}, {"role": "user"}):
        err = await call(client, "PATCH", f"/users/{admin.user_id}", admin, 409, json=body)
        assert err["code"] == "cannot_change_self"
    await call(client, "DELETE", f"/users/{admin.user_id}", admin, 409)
    await call(client, "PATCH", f"/users/{admin.user_id}", admin, json={"name": "fine"})


async def test_deleting_a_user_removes_them_and_their_access(client, make_account):
    """DELETE /users/{id} removes the user (404 afterwards) and their token stops working."""
    user = await make_account()
    admin = await make_account("admin")
    await call(client, "DELETE", f"/users/{user.user_id}", admin, 204)
    await call(client, "GET", f"/users/{user.user_id}", admin, 404)
    await call(client, "DELETE", f"/users/{user.user_id}", admin, 404)
    await call(client, "GET", "/users/me", user, 401)


async def test_deleting_a_user_with_data_cascades_cleanly(client, make_account):
    """Deleting a user who owns accounts, bots, orders and trades removes all of it in one
    statement (no foreign key error, no orphan rows left behind)."""
    from tests.rest.support import make_bot, make_exchange, make_order, seed_catalog

    admin = await make_account("admin")
    user = await make_account()
    seed = await seed_catalog(client, admin)
    ex = await make_exchange(client, user, seed["kraken"]["cat_ex_id"])
    bot = await make_bot(client, user, ex_ids=[ex["ex_id"]])
    order = await make_order(client, user, ex["ex_id"], bot["bot_id"])
    await call(client, "POST", "/trades", user, 201, json={
        "ex_id": ex["ex_id"], "bot_id": bot["bot_id"], "order_id": order["order_id"],
        "symbol": "BTC/USD", "side": "buy", "volume": 1, "price": 1})
    await call(client, "DELETE", f"/users/{user.user_id}", admin, 204)
    assert (await call(client, "GET", "/orders", admin))["items"] == []
    assert (await call(client, "GET", "/trades", admin))["items"] == []
    assert (await call(client, "GET", "/bots", admin))["items"] == []
    assert (await call(client, "GET", "/exchanges/user-exchanges", admin))["items"] == []


async def test_read_key_cannot_change_profile(client, make_account):
    """A read-scoped API key can read /users/me but gets 403 on PATCH /users/me."""
    user = await make_account()
    key = await api_key(client, user, ["read"])
    err = await call(client, "PATCH", "/users/me", key, 403, json={"name": "x"})
    assert err["code"] == "insufficient_scope"
