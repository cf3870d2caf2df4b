"""Stream authentication: every way in, every way out (1008 with a reason)."""

from __future__ import annotations

import asyncio
import time

import jwt

from fullon_gateway.auth.tokens import TokenCodec
from fullon_gateway.keys import AUTH, DB, SETTINGS
from tests.stream.support import closed, connect, publisher, recv, request, subscribe


async def test_no_token_closes_after_auth_deadline(app_client, make_settings):
    """Without ?token= and without an auth message, the socket closes 1008 missing token
    once the auth deadline passes."""
    client = await app_client(make_settings(ws_auth_timeout=0.3))
    ws = await connect(client)
    assert await closed(ws) == (1008, "missing token")


async def test_bad_tokens_close_with_reasons(client, make_account):
    """Garbage, alg=none, expired and wrong-signature tokens close 1008 with their reason."""
    acct = await make_account()
    ws = await connect(client, "garbage")
    assert await closed(ws) == (1008, "invalid token")

    claims = jwt.decode(acct.token, options={"verify_signature": False})
    none_token = jwt.encode(claims, key=None, algorithm="none")
    ws = await connect(client, none_token)
    assert await closed(ws) == (1008, "invalid token")

    forged = jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256")
    ws = await connect(client, forged)
    assert await closed(ws) == (1008, "invalid token")

    s = client.app[SETTINGS]
    expired, _ = TokenCodec(s.jwt_secret, s.jwt_algorithm, -60).issue_access(
        acct.user_id, acct.email, "user", __import__("uuid").UUID(claims["sid"]))
    ws = await connect(client, expired)
    assert await closed(ws) == (1008, "token expired")


async def test_disabled_user_is_refused(client, make_account):
    """A disabled user's token is refused with 1008 user disabled."""
    acct = await make_account()
    await client.app[DB].execute("UPDATE users SET is_active = false WHERE user_id = $1",
                                 acct.user_id)
    await client.app[AUTH].announce("user", acct.user_id)
    ws = await connect(client, acct.token)
    assert await closed(ws) == (1008, "user disabled")


async def test_api_key_and_first_message_auth(client, make_account):
    """An API key works as ?token=, and a JWT works as the first auth message."""
    acct = await make_account()
    resp = await client.post("/api/v1/orm/api_keys/me", json={"name": "k", "scopes": ["read"]},
                             headers=acct.headers)
    assert resp.status == 201, await resp.text()
    key = (await resp.json())["key"]
    ws = await connect(client, key)
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    await ws.close()

    ws = await connect(client)
    reply = await request(ws, "auth", {"token": acct.token}, request_id="a")
    assert reply["success"] is True and reply["result"]["user_id"] == acct.user_id
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    await ws.close()


async def test_first_message_must_be_auth(client, make_account):
    """A socket whose first message is not auth is closed 1008 missing token; a bad token
    in the auth message closes 1008 invalid token."""
    ws = await connect(client)
    await ws.send_json({"action": "subscribe", "params": {"stream": "tickers"}})
    assert await closed(ws) == (1008, "missing token")
    ws = await connect(client)
    await ws.send_json({"action": "auth", "params": {"token": "nope"}})
    assert await closed(ws) == (1008, "invalid token")


async def test_token_expiry_mid_stream(app_client, make_settings):
    """A socket whose access token expires is closed 1008 token expired."""
    client = await app_client(make_settings(access_ttl=1))
    await client.app[AUTH].create_user("exp@example.com", "pw-pw-pw-pw", "e")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "exp@example.com", "password": "pw-pw-pw-pw"})
    body = await resp.json()
    ws = await connect(client, body["access_token"])
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    assert await closed(ws, wait=5) == (1008, "token expired")


async def test_refresh_in_band_extends_the_socket(app_client, make_settings):
    """An in-band refresh with a newer token keeps the socket open past the old expiry;
    it then closes when the new token expires."""
    client = await app_client(make_settings(access_ttl=2))
    await client.app[AUTH].create_user("ref@example.com", "pw-pw-pw-pw", "r")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "ref@example.com", "password": "pw-pw-pw-pw"})
    body = await resp.json()
    first_exp = jwt.decode(body["access_token"], options={"verify_signature": False})["exp"]
    ws = await connect(client, body["access_token"])
    # Wait for the clock (not for an event): the new token must expire a second later.
    await asyncio.sleep(max(0.0, first_exp - 1 - time.time()))
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    new = (await resp.json())["access_token"]
    new_exp = jwt.decode(new, options={"verify_signature": False})["exp"]
    assert new_exp > first_exp
    reply = await request(ws, "refresh", {"token": new}, request_id="rf")
    assert reply["success"] is True and reply["result"]["expires_at"] == new_exp
    assert await closed(ws, wait=8) == (1008, "token expired")
    assert time.time() >= first_exp + 0.5  # it outlived the first token


async def test_refresh_with_another_users_token_is_refused(client, make_account):
    """refresh with a token of another user is FORBIDDEN and the socket keeps its identity."""
    a = await make_account()
    b = await make_account()
    ws = await connect(client, a.token)
    reply = await request(ws, "refresh", {"token": b.token})
    assert reply["success"] is False and reply["error_code"] == "FORBIDDEN"
    reply = await request(ws, "refresh", {"token": "junk"}, request_id="2")
    assert reply["error_code"] == "FORBIDDEN"
    await ws.close()


async def test_logout_closes_sockets_on_every_process(client, app_client, settings,
                                                      make_account):
    """Logout revokes the session: its sockets close 1008 session revoked, on this process
    and on another gateway process sharing Redis and Postgres."""
    acct = await make_account()
    other = await app_client(settings)
    ws_here = await connect(client, acct.token)
    ws_there = await connect(other, acct.token)
    await subscribe(ws_here, {"stream": "tickers", "exchange": "kraken"})
    await subscribe(ws_there, {"stream": "tickers", "exchange": "kraken"})
    resp = await client.post("/api/v1/auth/logout", headers=acct.headers)
    assert resp.status in (200, 204)
    assert await closed(ws_here, wait=5) == (1008, "session revoked")
    assert await closed(ws_there, wait=5) == (1008, "session revoked")


async def test_deactivated_key_and_disabled_user_close_sockets(client, make_account):
    """Deactivating an API key closes its sockets (key revoked); disabling a user closes
    theirs (user disabled)."""
    acct = await make_account()
    resp = await client.post("/api/v1/orm/api_keys/me", json={"name": "k", "scopes": ["read"]},
                             headers=acct.headers)
    created = await resp.json()
    ws_key = await connect(client, created["key"])
    await subscribe(ws_key, {"stream": "tickers", "exchange": "kraken"})
    resp = await client.patch(f"/api/v1/orm/api_keys/{created['id']}/deactivate",
                              headers=acct.headers)
    assert resp.status == 200, await resp.text()
    assert await closed(ws_key, wait=5) == (1008, "key revoked")

    ws = await connect(client, acct.token)
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    await client.app[DB].execute("UPDATE users SET is_active = false WHERE user_id = $1",
                                 acct.user_id)
    await client.app[AUTH].announce("user", acct.user_id)
    assert await closed(ws, wait=5) == (1008, "user disabled")


async def test_stream_delivery_survives_auth_traffic(client, make_account):
    """Sanity: an authenticated socket keeps receiving while other sockets fail auth."""
    acct = await make_account()
    ws = await connect(client, acct.token)
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    bad = await connect(client, "garbage")
    assert (await closed(bad))[0] == 1008
    await publisher(client).ticker("kraken", "A/B", {"price": 1})
    assert (await recv(ws))["result"]["price"] == 1
    await ws.close()


async def test_api_key_scopes_limit_streams(client, make_account):
    """A key without the read scope cannot open a stream socket (1008 insufficient scope);
    an admin's read-only key cannot see the admin-only process stream."""
    acct = await make_account()
    admin = await make_account("admin")
    resp = await client.post("/api/v1/orm/api_keys/me", json={"name": "t", "scopes": ["trade"]},
                             headers=acct.headers)
    ws = await connect(client, (await resp.json())["key"])
    assert await closed(ws) == (1008, "insufficient scope")
    resp = await client.post("/api/v1/orm/api_keys/me", json={"name": "r", "scopes": ["read"]},
                             headers=admin.headers)
    ws = await connect(client, (await resp.json())["key"])
    reply = await request(ws, "subscribe", {"stream": "process"})
    assert reply["error_code"] == "FORBIDDEN"
    await ws.close()


async def test_revocation_without_announcement_still_closes(app_client, make_settings):
    """If a revocation's Redis announcement is lost, the periodic re-check of each socket's
    credential still closes it (1008 session revoked) within about a cache TTL."""
    client = await app_client(make_settings(auth_cache_ttl=0.3, ws_revocation_check=0.1))
    await client.app[AUTH].create_user("lost@example.com", "pw-pw-pw-pw", "l")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "lost@example.com", "password": "pw-pw-pw-pw"})
    token = (await resp.json())["access_token"]
    sid = jwt.decode(token, options={"verify_signature": False})["sid"]
    ws = await connect(client, token)
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    await client.app[DB].execute("UPDATE sessions SET revoked_at = now() WHERE session_id = $1",
                                 __import__("uuid").UUID(sid))  # no announcement
    assert await closed(ws, wait=5) == (1008, "session revoked")


async def test_refresh_refuses_a_credential_without_read_scope(client, make_account):
    """The in-band refresh/auth refuses a credential of the same user that lacks the read
    scope (connect would refuse it too), and the socket keeps its current credential."""
    acct = await make_account()
    resp = await client.post("/api/v1/orm/api_keys/me", json={"name": "t", "scopes": ["trade"]},
                             headers=acct.headers)
    trade_key = (await resp.json())["key"]
    ws = await connect(client, acct.token)
    for action in ("refresh", "auth"):
        reply = await request(ws, action, {"token": trade_key}, request_id=action)
        assert reply["success"] is False and reply["error_code"] == "FORBIDDEN", reply
    reply = await request(ws, "refresh", {"token": acct.token}, request_id="ok")
    assert reply["success"] is True
    await ws.close()
