"""AuthService beyond the HTTP routes: declarations, cross-process invalidation,
revocation listeners, the usage flusher, Redis outages and stored hashes."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from fullon_gateway.app import create_app
from fullon_gateway.auth.identity import caller_of, optional_caller, public, requires
from fullon_gateway.embedded import RedisProcess
from fullon_gateway.keys import AUTH, DB
from tests.conftest import account_maker
from tests.support import eventually

VERIFY = "/api/v1/auth/verify"
LOGIN = "/api/v1/auth/login"


@public
async def _whoami(request: web.Request) -> web.Response:
    """Public, but says who called when someone did."""
    caller = optional_caller(request)
    return web.json_response({"user_id": caller.user_id if caller else None})


@public
async def _needs_caller(request: web.Request) -> web.Response:
    """A (buggy) public view that insists on a caller."""
    return web.json_response({"user_id": caller_of(request).user_id})


@requires("admin")
async def _admin_only(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@pytest.fixture
async def client(aiohttp_client, settings):
    """The real app plus a few views declared in each possible way."""
    app = create_app(settings)
    app.router.add_get("/test/whoami", _whoami)
    app.router.add_get("/test/needs-caller", _needs_caller)
    app.router.add_get("/test/admin", _admin_only)
    return await aiohttp_client(app)


def test_requires_rejects_unknown_scopes():
    """Declaring a scope that does not exist is a programming error caught at import."""
    with pytest.raises(ValueError, match="unknown scope"):
        requires("superuser")


async def test_public_view_sees_an_optional_caller(client, make_account):
    """A public view gets the caller when a valid credential is sent, None otherwise."""
    acct = await make_account()
    anonymous = await (await client.get("/test/whoami")).json()
    assert anonymous == {"user_id": None}
    known = await (await client.get("/test/whoami", headers=acct.headers)).json()
    assert known == {"user_id": acct.user_id}


async def test_caller_of_without_caller_is_401(client):
    """caller_of() on an anonymous request answers 401, not a crash."""
    resp = await client.get("/test/needs-caller")
    assert resp.status == 401
    assert (await resp.json())["code"] == "not_authenticated"


async def test_admin_scope_is_for_admins(client, make_account):
    """@requires("admin"): a user's token is 403 insufficient_scope, an admin's is 200."""
    user = await make_account()
    admin = await make_account(role="admin")
    resp = await client.get("/test/admin", headers=user.headers)
    assert resp.status == 403
    assert (await resp.json())["code"] == "insufficient_scope"
    assert (await client.get("/test/admin", headers=admin.headers)).status == 200


async def test_invalidation_from_another_process_is_applied(client, make_account,
                                                            redis_client, settings):
    """A raw invalidation published on gateway:auth (as another gateway process would)
    drops the cached user; malformed and unknown messages are ignored."""
    acct = await make_account()
    assert (await client.get(VERIFY, headers=acct.headers)).status == 200  # cached
    await client.app[DB].execute("UPDATE users SET is_active = false WHERE user_id = $1",
                                 acct.user_id)
    # Still cached: the change was made behind the gateway's back.
    assert (await client.get(VERIFY, headers=acct.headers)).status == 200
    channel = settings.redis_prefix + "gateway:auth"
    for junk in (b"not json", b'{"kind": "user"}', b'{"kind": "user", "id": "x"}',
                 b'{"kind": "planet", "id": "1"}', b'{"kind": "api_key", "id": "7"}',
                 b'{"kind": "ownership", "id": "7"}',
                 b'{"kind": "session", "id": "not-a-uuid"}'):
        await redis_client.publish(channel, junk)
    await redis_client.publish(channel, f'{{"kind": "user", "id": "{acct.user_id}"}}')

    async def refused() -> bool:
        return (await client.get(VERIFY, headers=acct.headers)).status == 401

    await eventually(refused)


async def test_session_revocation_from_another_process(client, make_account, redis_client,
                                                       settings):
    """A session revoked by another process (DB + announcement) is refused here even
    though this process had it cached."""
    import jwt

    acct = await make_account()
    assert (await client.get(VERIFY, headers=acct.headers)).status == 200  # cached
    sid = jwt.decode(acct.token, options={"verify_signature": False})["sid"]
    await client.app[DB].execute("UPDATE sessions SET revoked_at = now()")
    await redis_client.publish(settings.redis_prefix + "gateway:auth",
                               f'{{"kind": "session", "id": "{sid}"}}')

    async def refused() -> bool:
        return (await client.get(VERIFY, headers=acct.headers)).status == 401

    await eventually(refused)


async def test_revocation_listeners_are_told_and_a_failing_one_is_contained(
        client, make_account, caplog):
    """Every revocation reaches each listener; one that raises is logged and does not
    stop the others or the logout."""
    acct = await make_account()
    seen: list[tuple[str, object]] = []

    def broken(kind: str, ident: object) -> None:
        raise RuntimeError("listener bug")

    client.app[AUTH].add_revocation_listener(broken)
    client.app[AUTH].add_revocation_listener(lambda kind, ident: seen.append((kind, ident)))
    with caplog.at_level(logging.ERROR, logger="fullon_gateway.auth.service"):
        resp = await client.post("/api/v1/auth/logout", headers=acct.headers)
    assert resp.status == 200
    assert [kind for kind, _ in seen][:1] == ["session"]
    assert any("revocation listener failed" in r.getMessage() for r in caplog.records)


async def test_hub_reconnect_forgets_cached_identities(client, make_account):
    """After the hub reconnects (invalidations may have been missed) cached identities
    are re-read: a user disabled meanwhile is refused at once."""
    acct = await make_account()
    assert (await client.get(VERIFY, headers=acct.headers)).status == 200  # cached
    await client.app[DB].execute("UPDATE users SET is_active = false WHERE user_id = $1",
                                 acct.user_id)
    await client.app[AUTH].on_hub_reconnect()
    resp = await client.get(VERIFY, headers=acct.headers)
    assert resp.status == 401
    assert (await resp.json())["code"] == "user_disabled"


async def test_deleted_user_with_cached_session_is_refused(client, make_account):
    """A user deleted while their session is still cached is refused (user disabled)."""
    acct = await make_account()
    assert (await client.get(VERIFY, headers=acct.headers)).status == 200  # session cached
    await client.app[DB].execute("DELETE FROM users WHERE user_id = $1", acct.user_id)
    await client.app[AUTH].announce("user", acct.user_id)
    resp = await client.get(VERIFY, headers=acct.headers)
    assert resp.status == 401
    assert (await resp.json())["code"] == "user_disabled"


async def test_usage_flusher_writes_last_used_at_on_its_own(app_client, make_settings,
                                                            make_account):
    """The background flusher records key usage every api_key_touch_interval."""
    client = await app_client(make_settings(api_key_touch_interval=0.05))
    acct = await make_account()
    created = await (await client.post("/api/v1/orm/api_keys/me", headers=acct.headers,
                                       json={"name": "k", "scopes": ["read"]})).json()
    assert (await client.get(VERIFY, headers={"X-API-Key": created["key"]})).status == 200

    async def written() -> bool:
        return await client.app[DB].fetchval(
            "SELECT last_used_at FROM api_keys WHERE key_id = $1", created["id"]) is not None

    await eventually(written)


async def test_logout_with_redis_down_still_revokes_here(app_client, make_settings,
                                                         tmp_path, caplog):
    """With Redis down the invalidation cannot be published, but the logout is still
    stored and applied in this process (and logged)."""
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    try:
        client = await app_client(make_settings(redis_url=redis.url))
        await client.app[AUTH].create_user("r@example.com", "pw-123456")
        pair = await (await client.post(LOGIN, json={"email": "r@example.com",
                                                     "password": "pw-123456"})).json()
        headers = {"Authorization": f"Bearer {pair['access_token']}"}
        assert (await client.get(VERIFY, headers=headers)).status == 200
        redis.stop()
        with caplog.at_level(logging.WARNING, logger="fullon_gateway.auth.service"):
            resp = await client.post("/api/v1/auth/logout", headers=headers)
        assert resp.status == 200
        assert any("could not publish" in r.getMessage() for r in caplog.records)
        after = await client.get(VERIFY, headers=headers)
        assert after.status == 401
        assert (await after.json())["code"] == "session_revoked"
        revoked = await client.app[DB].fetchval("SELECT revoked_at FROM sessions")
        assert revoked is not None
    finally:
        redis.stop()


async def test_corrupt_password_hash_fails_closed(client):
    """A password hash that is not a valid argon2 hash refuses the login (401) and is
    flagged for rehashing, instead of crashing."""
    row = await client.app[AUTH].create_user("c@example.com", "pw-123456")
    await client.app[DB].execute("UPDATE users SET password_hash = 'garbage' WHERE user_id = $1",
                                 row["user_id"])
    resp = await client.post(LOGIN, json={"email": "c@example.com", "password": "pw-123456"})
    assert resp.status == 401
    assert (await resp.json())["code"] == "invalid_credentials"
    assert client.app[AUTH].passwords.needs_rehash("garbage") is True


def test_hash_sync_makes_verifiable_hashes(settings):
    """The synchronous hasher (for the CLI) makes argon2id hashes the service accepts."""
    from fullon_gateway.auth.passwords import Passwords

    passwords = Passwords(settings)
    digest = passwords.hash_sync("pw-123456")
    assert digest.startswith("$argon2id$")
    assert asyncio.run(passwords.verify(digest, "pw-123456")) is True
    assert asyncio.run(passwords.verify(digest, "wrong")) is False
    assert asyncio.run(passwords.verify(None, "pw-123456")) is False


async def test_identity_caches_are_bounded(app_client, make_settings):
    """The session and API-key caches are reset when full (auth_cache_max) instead of
    growing forever, and a revoked session stays refused after its cache entry is gone."""
    client = await app_client(make_settings(auth_cache_max=2))
    make_account = account_maker(client)
    auth = client.app[AUTH].identify
    accounts = [await make_account() for _ in range(3)]
    for acct in accounts:
        assert (await client.get(VERIFY, headers=acct.headers)).status == 200
        assert len(auth._sessions) <= 2
    assert (await client.post("/api/v1/auth/logout", headers=accounts[0].headers)).status == 200
    for acct in accounts[1:]:  # push the revoked entry out of the cache
        assert (await client.get(VERIFY, headers=acct.headers)).status == 200
    assert (await client.get(VERIFY, headers=accounts[0].headers)).status == 401
    for i in range(3):
        await client.get(VERIFY, headers={"X-API-Key": f"fullon_ak_unknown{i}"})
        assert len(auth._keys) <= 2
