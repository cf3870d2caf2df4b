"""Refresh rotation, reuse detection, logout and verify (docs/contract.md section 3)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import jwt
import pytest

from fullon_gateway.keys import AUTH, DB, SETTINGS
from tests.modes import DB_MODES
from tests.support import eventually

# The same tests, on the gateway's own schema and attached to fullon's (both shapes).
pytestmark = pytest.mark.parametrize("db_mode", DB_MODES, indirect=True)

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
VERIFY = "/api/v1/auth/verify"


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _sid(client, token):
    return jwt.decode(token, client.app[SETTINGS].jwt_secret, algorithms=["HS256"])["sid"]


async def test_verify_shape_for_a_jwt(client, make_account):
    """verify answers {user_id, username, email, role, is_active, expires_at} for the token."""
    acct = await make_account()
    resp = await client.get(VERIFY, headers=acct.headers)
    assert resp.status == 200
    body = await resp.json()
    assert {"user_id", "username", "email", "role", "is_active", "expires_at"} <= set(body)
    assert body["user_id"] == acct.user_id
    assert body["username"] == body["email"] == acct.email
    assert body["role"] == "user" and body["is_active"] is True
    assert body["auth_type"] == "jwt" and body["scopes"] == ["read", "trade"]
    exp = jwt.decode(acct.token, client.app[SETTINGS].jwt_secret, algorithms=["HS256"])["exp"]
    assert body["expires_at"].endswith("Z")
    parsed = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert int(parsed.timestamp()) == exp


async def test_verify_admin_gets_all_scopes(client, make_account):
    """An admin's JWT carries every scope and role admin."""
    admin = await make_account(role="admin")
    body = await (await client.get(VERIFY, headers=admin.headers)).json()
    assert body["role"] == "admin"
    assert body["scopes"] == ["admin", "ingest", "read", "trade"]


async def test_verify_without_credentials_is_401(client):
    """verify with no credential is 401 not_authenticated with WWW-Authenticate: Bearer."""
    resp = await client.get(VERIFY)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert (await resp.json())["code"] == "not_authenticated"


async def test_refresh_rotates_the_pair_and_retires_the_old_token(client, make_account):
    """Refresh gives a new pair in the same session; the presented token is marked used."""
    acct = await make_account()
    resp = await client.post(REFRESH, json={"refresh_token": acct.refresh_token})
    assert resp.status == 200, await resp.text()
    pair = await resp.json()
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}
    assert pair["refresh_token"] != acct.refresh_token
    assert pair["access_token"] != acct.token
    assert pair["user"]["user_id"] == acct.user_id
    assert _sid(client, pair["access_token"]) == _sid(client, acct.token)
    used = await client.app[DB].fetchval(
        "SELECT used_at FROM refresh_tokens WHERE token_hash = $1",
        hashlib.sha256(acct.refresh_token.encode()).digest())
    assert used is not None
    ok = await client.get(VERIFY, headers=_bearer(pair["access_token"]))
    assert ok.status == 200
    # The new refresh token rotates again.
    again = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert again.status == 200


async def test_refresh_tokens_are_stored_hashed(client, make_account):
    """No refresh token is kept in clear: only its SHA-256 is in the table."""
    acct = await make_account()
    rows = await client.app[DB].fetch("SELECT token_hash FROM refresh_tokens")
    assert [bytes(r["token_hash"]) for r in rows] == [
        hashlib.sha256(acct.refresh_token.encode()).digest()]


async def test_reusing_a_retired_refresh_token_revokes_the_session(client, make_account):
    """A retired refresh token presented again is 401 and kills the whole session:
    the new refresh token and every access token of that session stop working."""
    acct = await make_account()
    pair = await (await client.post(REFRESH, json={"refresh_token": acct.refresh_token})).json()
    reuse = await client.post(REFRESH, json={"refresh_token": acct.refresh_token})
    assert reuse.status == 401
    assert (await reuse.json())["code"] == "refresh_token_reused"
    assert reuse.headers["WWW-Authenticate"] == "Bearer"
    for token in (acct.token, pair["access_token"]):
        resp = await client.get(VERIFY, headers=_bearer(token))
        assert resp.status == 401
        body = await resp.json()
        assert body == {"detail": "session revoked", "code": "session_revoked"}
    successor = await client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    assert successor.status == 401
    assert (await successor.json())["code"] == "invalid_refresh_token"
    why = await client.app[DB].fetchval(
        "SELECT revoked_why FROM sessions WHERE session_id = $1::uuid", _sid(client, acct.token))
    assert why == "refresh token reuse"


async def test_reuse_revokes_only_that_session(client, make_account):
    """Reuse detection in one session leaves the same user's other sessions working."""
    acct = await make_account()
    other = await (await client.post("/api/v1/auth/login", json={
        "email": acct.email, "password": acct.password})).json()
    await client.post(REFRESH, json={"refresh_token": acct.refresh_token})
    await client.post(REFRESH, json={"refresh_token": acct.refresh_token})
    assert (await client.get(VERIFY, headers=acct.headers)).status == 401
    assert (await client.get(VERIFY, headers=_bearer(other["access_token"]))).status == 200


async def test_concurrent_refresh_with_one_token_has_one_winner(client, make_account):
    """Two refreshes racing with the same token: exactly one gets a pair."""
    acct = await make_account()
    a, b = await asyncio.gather(
        client.post(REFRESH, json={"refresh_token": acct.refresh_token}),
        client.post(REFRESH, json={"refresh_token": acct.refresh_token}),
    )
    assert sorted([a.status, b.status]) == [200, 401]


async def test_unknown_and_expired_refresh_tokens_are_401(client, make_account):
    """A refresh token never issued, or past its expiry, is 401 invalid_refresh_token."""
    acct = await make_account()
    unknown = await client.post(REFRESH, json={"refresh_token": "not-a-real-token"})
    assert unknown.status == 401
    assert (await unknown.json())["code"] == "invalid_refresh_token"
    await client.app[DB].execute("UPDATE refresh_tokens SET expires_at = now() - interval '1s'")
    expired = await client.post(REFRESH, json={"refresh_token": acct.refresh_token})
    assert expired.status == 401
    assert (await expired.json())["code"] == "invalid_refresh_token"
    # An expired token is not "reused": the session is still alive.
    assert (await client.get(VERIFY, headers=acct.headers)).status == 200


async def test_refresh_for_a_disabled_user_is_refused(client, make_account):
    """A disabled user's refresh token yields no new pair (401 user_disabled)."""
    acct = await make_account()
    await client.app[DB].execute("UPDATE users SET is_active = false WHERE user_id = $1",
                                 acct.user_id)
    resp = await client.post(REFRESH, json={"refresh_token": acct.refresh_token})
    assert resp.status == 401
    assert (await resp.json())["code"] == "user_disabled"


async def test_refresh_body_validation(client):
    """A refresh without refresh_token, or with extra fields, is 422 with fields."""
    for payload, field in (({}, "refresh_token"), ({"refresh_token": "x", "a": 1}, "a"),
                           ({"refresh_token": ""}, "refresh_token")):
        resp = await client.post(REFRESH, json=payload)
        assert resp.status == 422
        assert field in (await resp.json())["fields"]


async def test_logout_revokes_the_session(client, make_account):
    """Logout answers 200; then the session's access and refresh tokens are refused."""
    acct = await make_account()
    resp = await client.post(LOGOUT, headers=acct.headers)
    assert resp.status == 200
    assert (await resp.json())["success"] is True
    after = await client.get(VERIFY, headers=acct.headers)
    assert after.status == 401
    assert (await after.json())["code"] == "session_revoked"
    refresh = await client.post(REFRESH, json={"refresh_token": acct.refresh_token})
    assert refresh.status == 401
    assert (await refresh.json())["code"] == "invalid_refresh_token"
    twice = await client.post(LOGOUT, headers=acct.headers)
    assert twice.status == 401


async def test_logout_is_seen_by_another_gateway_process(client, make_account, app_client,
                                                         settings):
    """A session revoked in one gateway is refused by a second one that had it cached."""
    acct = await make_account()
    second = await app_client(settings)
    assert (await second.get(VERIFY, headers=acct.headers)).status == 200  # now cached there
    assert (await client.post(LOGOUT, headers=acct.headers)).status == 200

    async def refused() -> bool:
        return (await second.get(VERIFY, headers=acct.headers)).status == 401

    await eventually(refused, within=5, what="the second gateway refusing the session")


async def test_logout_needs_a_session(client, make_account):
    """Logout without a credential is 401; with an API key it is 403 session_required."""
    assert (await client.post(LOGOUT)).status == 401
    acct = await make_account()
    created = await (await client.post("/api/v1/orm/api_keys/me", headers=acct.headers,
                                       json={"name": "k", "scopes": ["read", "trade"]})).json()
    resp = await client.post(LOGOUT, headers={"X-API-Key": created["key"]})
    assert resp.status == 403
    assert (await resp.json())["code"] == "session_required"


async def test_role_change_applies_to_existing_tokens(client, make_account):
    """A demoted admin's existing token gets the user role once the change is announced."""
    admin = await make_account(role="admin")
    await client.app[DB].execute("UPDATE users SET role = 'user' WHERE user_id = $1",
                                 admin.user_id)
    await client.app[AUTH].announce("user", admin.user_id)
    body = await (await client.get(VERIFY, headers=admin.headers)).json()
    assert body["role"] == "user" and body["scopes"] == ["read", "trade"]


async def test_refresh_cannot_outlive_the_session(client, make_account):
    """A session lasts refresh_ttl from login however often it is refreshed: once the
    session's end has passed, refresh tokens and access tokens of it are refused."""
    from fullon_gateway.keys import AUTH, DB

    acct = await make_account()
    fresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": acct.refresh_token})
    assert fresh.status == 200
    pair = await fresh.json()
    db = client.app[DB]
    sid = await db.fetchval("SELECT session_id FROM sessions WHERE user_id = $1", acct.user_id)
    # The refresh token issued by the refresh does not reach past the session's end.
    within = await db.fetchval(
        "SELECT bool_and(r.expires_at <= s.expires_at) "
        "FROM refresh_tokens r JOIN sessions s USING (session_id) WHERE s.session_id = $1", sid)
    assert within
    await db.execute("UPDATE sessions SET expires_at = now() - interval '1 second' "
                     "WHERE session_id = $1", sid)
    client.app[AUTH].identify.clear_caches()
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status == 401
    verify = await client.get("/api/v1/auth/verify",
                              headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert verify.status == 401
    assert (await verify.json())["code"] == "token_expired"
