"""API keys: created once, stored hashed, scoped, expiring, revocable (contract section 3)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from aiohttp import web

from fullon_gateway.app import create_app
from fullon_gateway.auth.identity import caller_of
from fullon_gateway.keys import AUTH, DB
from tests.modes import DB_MODES

# The same tests, on the gateway's own schema and attached to fullon's (both shapes).
pytestmark = pytest.mark.parametrize("db_mode", DB_MODES, indirect=True)

KEYS = "/api/v1/orm/api_keys"
VERIFY = "/api/v1/auth/verify"
WRITE = "/test/write"  # a view with no declaration: the deny-by-default policy applies


async def _write_view(request: web.Request) -> web.Response:
    """Stands in for any state-changing route; returns who called."""
    return web.json_response({"user_id": caller_of(request).user_id})


@pytest.fixture
async def client(aiohttp_client, settings):
    """The real app plus one undeclared route, to exercise the default scope policy."""
    app = create_app(settings)
    for method in ("POST", "PATCH", "DELETE", "GET"):
        app.router.add_route(method, WRITE, _write_view)
    return await aiohttp_client(app)


async def _create(client, headers, status=201, **body):
    body.setdefault("name", "bot key")
    body.setdefault("scopes", ["read"])
    resp = await client.post(f"{KEYS}/me", json=body, headers=headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


def _key(created):
    return {"X-API-Key": created["key"]}


async def test_create_shows_the_key_once(client, make_account):
    """POST /me answers 201 with a fullon_ak_ key; the listing never shows it again."""
    acct = await make_account()
    created = await _create(client, acct.headers, scopes=["read", "trade", "read"])
    assert created["key"].startswith("fullon_ak_") and len(created["key"]) > 40
    assert created["key_prefix"] == created["key"][:16]
    assert created["scopes"] == ["read", "trade"]
    assert created["is_active"] is True and created["last_used_at"] is None
    assert created["expires_at"] is None and created["created_at"].endswith("Z")
    listing = await (await client.get(f"{KEYS}/me", headers=acct.headers)).json()
    assert listing["next_cursor"] is None
    [item] = listing["items"]
    assert "key" not in item and item["id"] == created["id"]
    assert created["key"] not in str(listing)


async def test_key_is_stored_only_as_a_hash(client, make_account):
    """The database holds the SHA-256 of the key and a short prefix, never the key."""
    acct = await make_account()
    created = await _create(client, acct.headers)
    row = await client.app[DB].fetchrow("SELECT * FROM api_keys WHERE key_id = $1", created["id"])
    assert bytes(row["key_hash"]) == hashlib.sha256(created["key"].encode()).digest()
    for value in dict(row).values():
        text = value.hex() if isinstance(value, bytes) else str(value)
        assert created["key"] not in text
        assert created["key"][16:] not in text


async def test_key_works_as_x_api_key_and_as_bearer(client, make_account):
    """A key authenticates through X-API-Key and through Authorization: Bearer."""
    acct = await make_account()
    created = await _create(client, acct.headers)
    for headers in (_key(created), {"Authorization": f"Bearer {created['key']}"}):
        resp = await client.get(VERIFY, headers=headers)
        assert resp.status == 200
        body = await resp.json()
        assert body["user_id"] == acct.user_id and body["auth_type"] == "api_key"
        assert body["scopes"] == ["read"] and body["expires_at"] is None


async def test_authorization_header_wins_over_x_api_key(client, make_account):
    """With both headers, Authorization is used (a bad one is not rescued by a good key)."""
    acct = await make_account()
    created = await _create(client, acct.headers)
    resp = await client.get(VERIFY, headers={"Authorization": "Bearer junk", **_key(created)})
    assert resp.status == 401


async def test_read_key_cannot_write(client, make_account):
    """A read key reads (GET) but every POST/PATCH/DELETE is 403 insufficient_scope."""
    acct = await make_account()
    created = await _create(client, acct.headers, scopes=["read"])
    assert (await client.get(WRITE, headers=_key(created))).status == 200
    for method in ("POST", "PATCH", "DELETE"):
        resp = await client.request(method, WRITE, headers=_key(created))
        assert resp.status == 403, method
        assert (await resp.json())["code"] == "insufficient_scope"


async def test_trade_key_can_write_but_not_read_without_read(client, make_account):
    """A trade-only key may change state but cannot GET (read is its own scope)."""
    acct = await make_account()
    created = await _create(client, acct.headers, scopes=["trade"])
    resp = await client.post(WRITE, headers=_key(created))
    assert resp.status == 200
    assert (await resp.json())["user_id"] == acct.user_id
    assert (await client.get(WRITE, headers=_key(created))).status == 403


async def test_no_credential_on_undeclared_route_is_401(client):
    """Deny by default: an undeclared route without credentials is 401."""
    assert (await client.post(WRITE)).status == 401
    assert (await client.get(WRITE)).status == 401


async def test_keys_cannot_manage_keys(client, make_account):
    """An API key (even read+trade) cannot create, deactivate or delete keys: 403
    session_required. It can list the owner's keys."""
    acct = await make_account()
    created = await _create(client, acct.headers, scopes=["read", "trade"])
    key_id = created["id"]
    for method, path in (("POST", f"{KEYS}/me"), ("PATCH", f"{KEYS}/{key_id}/deactivate"),
                         ("DELETE", f"{KEYS}/{key_id}")):
        resp = await client.request(method, path, headers=_key(created),
                                    json={"name": "x", "scopes": ["read"]})
        assert resp.status == 403, (method, path)
        assert (await resp.json())["code"] == "session_required"
    listing = await client.get(f"{KEYS}/me", headers=_key(created))
    assert listing.status == 200
    assert [k["id"] for k in (await listing.json())["items"]] == [key_id]


@pytest.mark.parametrize("scopes", [["ingest"], ["admin"], ["read", "admin"]])
async def test_users_cannot_create_ingest_or_admin_keys(client, make_account, scopes):
    """ingest and admin scopes are for admin accounts only: 403 scope_not_allowed."""
    acct = await make_account()
    body = await _create(client, acct.headers, status=403, scopes=scopes)
    assert body["code"] == "scope_not_allowed"
    assert await client.app[DB].fetchval("SELECT count(*) FROM api_keys") == 0


async def test_admin_creates_ingest_and_admin_keys(client, make_account):
    """An admin may create keys with ingest and admin scopes, and they carry them.
    Scopes do not imply each other: without read, the key cannot call read routes."""
    admin = await make_account(role="admin")
    created = await _create(client, admin.headers, scopes=["read", "ingest", "admin"])
    body = await (await client.get(VERIFY, headers=_key(created))).json()
    assert body["scopes"] == ["admin", "ingest", "read"]
    no_read = await _create(client, admin.headers, scopes=["ingest"])
    assert (await client.get(VERIFY, headers=_key(no_read))).status == 403


async def test_demoted_admin_key_loses_admin_scopes(client, make_account):
    """A key's scopes are capped by its owner's current role: after demotion an admin
    key keeps only user scopes."""
    admin = await make_account(role="admin")
    created = await _create(client, admin.headers, scopes=["read", "admin"])
    await client.app[DB].execute("UPDATE users SET role = 'user' WHERE user_id = $1",
                                 admin.user_id)
    await client.app[AUTH].announce("user", admin.user_id)
    body = await (await client.get(VERIFY, headers=_key(created))).json()
    assert body["scopes"] == ["read"] and body["role"] == "user"


@pytest.mark.parametrize("body,field", [
    ({"scopes": ["read"]}, "name"),
    ({"name": "k"}, "scopes"),
    ({"name": "k", "scopes": []}, "scopes"),
    ({"name": "k", "scopes": ["root"]}, "scopes.0"),
    ({"name": "k", "scopes": ["read"], "expires_at": "2099-01-01T00:00:00"}, "expires_at"),
    ({"name": "k", "scopes": ["read"], "expires_at": "soon"}, "expires_at"),
    ({"name": "k", "scopes": ["read"], "owner": 1}, "owner"),
    ({"name": "", "scopes": ["read"]}, "name"),
])
async def test_create_validation(client, make_account, body, field):
    """Bad create bodies are 422 naming the field (naive expires_at included)."""
    acct = await make_account()
    resp = await client.post(f"{KEYS}/me", json=body, headers=acct.headers)
    assert resp.status == 422
    answer = await resp.json()
    assert answer["code"] == "validation_error" and field in answer["fields"], answer


async def test_expires_at_in_the_past_is_422(client, make_account):
    """A key cannot be born expired: expires_at in the past is 422."""
    acct = await make_account()
    body = await _create(client, acct.headers, status=422,
                         expires_at="2001-01-01T00:00:00Z")
    assert "expires_at" in body["fields"]


async def test_key_with_expiry_reports_it_and_expires(client, make_account):
    """A key with expires_at works until then and is 401 "token expired" afterwards."""
    acct = await make_account()
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    created = await _create(client, acct.headers,
                            expires_at=future.isoformat().replace("+00:00", "Z"))
    body = await (await client.get(VERIFY, headers=_key(created))).json()
    assert body["expires_at"] == future.replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")
    await client.app[DB].execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_id = $1",
        created["id"])
    await client.app[AUTH].announce("api_key", created["id"])
    resp = await client.get(VERIFY, headers=_key(created))
    assert resp.status == 401
    assert await resp.json() == {"detail": "token expired", "code": "token_expired"}


async def test_expires_at_accepts_epoch_milliseconds(client, make_account):
    """expires_at may be given as integer epoch milliseconds."""
    acct = await make_account()
    ms = int((dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).timestamp() * 1000)
    created = await _create(client, acct.headers, expires_at=ms)
    assert created["expires_at"] is not None


async def test_deactivated_key_is_refused(client, make_account):
    """PATCH /{id}/deactivate answers the key record; the key is then 401."""
    acct = await make_account()
    created = await _create(client, acct.headers)
    assert (await client.get(VERIFY, headers=_key(created))).status == 200  # cached
    resp = await client.patch(f"{KEYS}/{created['id']}/deactivate", headers=acct.headers)
    assert resp.status == 200
    body = await resp.json()
    assert body["is_active"] is False and "key" not in body
    after = await client.get(VERIFY, headers=_key(created))
    assert after.status == 401
    assert (await after.json())["code"] == "invalid_token"


async def test_deleted_key_is_refused(client, make_account):
    """DELETE /{id} answers 204; the key is then 401 and gone from the listing."""
    acct = await make_account()
    created = await _create(client, acct.headers)
    assert (await client.get(VERIFY, headers=_key(created))).status == 200  # cached
    resp = await client.delete(f"{KEYS}/{created['id']}", headers=acct.headers)
    assert resp.status == 204
    assert (await client.get(VERIFY, headers=_key(created))).status == 401
    listing = await (await client.get(f"{KEYS}/me", headers=acct.headers)).json()
    assert listing["items"] == []
    again = await client.delete(f"{KEYS}/{created['id']}", headers=acct.headers)
    assert again.status == 404


async def test_another_users_key_is_404(client, make_account):
    """Deactivating or deleting someone else's key is 404, and their key keeps working."""
    alice = await make_account()
    bob = await make_account()
    created = await _create(client, alice.headers)
    for method, path in (("PATCH", f"{KEYS}/{created['id']}/deactivate"),
                         ("DELETE", f"{KEYS}/{created['id']}")):
        resp = await client.request(method, path, headers=bob.headers)
        assert resp.status == 404
        assert (await resp.json())["code"] == "api_key_not_found"
    assert (await client.get(VERIFY, headers=_key(created))).status == 200
    listing = await (await client.get(f"{KEYS}/me", headers=bob.headers)).json()
    assert listing["items"] == []


async def test_admin_can_revoke_another_users_key(client, make_account):
    """An admin sees all objects: they may deactivate a user's key."""
    alice = await make_account()
    admin = await make_account(role="admin")
    created = await _create(client, alice.headers)
    resp = await client.patch(f"{KEYS}/{created['id']}/deactivate", headers=admin.headers)
    assert resp.status == 200
    assert (await client.get(VERIFY, headers=_key(created))).status == 401


@pytest.mark.parametrize("key_id", ["abc", "0", "-1", "99999", "99999999999"])
async def test_unknown_or_malformed_key_id_is_404(client, make_account, key_id):
    """Key ids that are not integers, out of range or unknown are 404."""
    acct = await make_account()
    resp = await client.patch(f"{KEYS}/{key_id}/deactivate", headers=acct.headers)
    assert resp.status == 404
    assert set(await resp.json()) == {"detail", "code"}


async def test_key_of_a_disabled_user_is_refused(client, make_account):
    """A key stops working when its owner is disabled (401 user disabled)."""
    acct = await make_account()
    created = await _create(client, acct.headers)
    await client.app[DB].execute("UPDATE users SET is_active = false WHERE user_id = $1",
                                 acct.user_id)
    await client.app[AUTH].announce("user", acct.user_id)
    resp = await client.get(VERIFY, headers=_key(created))
    assert resp.status == 401
    assert (await resp.json())["code"] == "user_disabled"


async def test_last_used_at_is_written_in_batches(client, make_account):
    """Using a key does not write the database per request; flush_key_usage() records
    last_used_at for every key used since the last flush."""
    acct = await make_account()
    one = await _create(client, acct.headers, name="one")
    two = await _create(client, acct.headers, name="two")
    for created in (one, two, one):
        assert (await client.get(VERIFY, headers=_key(created))).status == 200
    stored = await client.app[DB].fetch("SELECT last_used_at FROM api_keys")
    assert [r["last_used_at"] for r in stored] == [None, None]
    before = dt.datetime.now(dt.UTC)
    await client.app[AUTH].flush_key_usage()
    listing = await (await client.get(f"{KEYS}/me", headers=acct.headers)).json()
    for item in listing["items"]:
        used = dt.datetime.fromisoformat(item["last_used_at"].replace("Z", "+00:00"))
        assert before - dt.timedelta(minutes=1) < used <= dt.datetime.now(dt.UTC)
    await client.app[AUTH].flush_key_usage()  # nothing new: a no-op


async def test_key_usage_is_flushed_on_shutdown(aiohttp_client, settings, make_account, client):
    """Usage not yet flushed is written when the app shuts down."""
    acct = await make_account()
    created = await _create(client, acct.headers)
    other = await aiohttp_client(create_app(settings))
    assert (await other.get(VERIFY, headers=_key(created))).status == 200
    await other.close()
    used = await client.app[DB].fetchval(
        "SELECT last_used_at FROM api_keys WHERE key_id = $1", created["id"])
    assert used is not None


async def test_key_list_is_paginated(client, make_account):
    """The key list pages with limit and cursor like every list: no key twice, none skipped."""
    acct = await make_account()
    made = [(await _create(client, acct.headers, name=f"k{i}"))["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        url = "/api/v1/orm/api_keys/me?limit=2" + (f"&cursor={cursor}" if cursor else "")
        resp = await client.get(url, headers=acct.headers)
        assert resp.status == 200
        body = await resp.json()
        assert len(body["items"]) <= 2
        seen += [k["id"] for k in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    bad = await client.get("/api/v1/orm/api_keys/me?cursor=%21%21", headers=acct.headers)
    assert bad.status == 422


async def test_made_up_keys_cost_no_query_and_keep_real_keys_cached(client, make_account,
                                                                   db_mode):
    """Keys that are not of the issued shape are refused before any lookup; well-formed
    unknown keys are looked up once and remembered in their own cache, so a flood of
    them neither reaches Postgres again nor pushes a real key out of its cache."""
    from fullon_gateway.keys import AUTH

    acct = await make_account()
    created = await _create(client, acct.headers)
    real = {"X-API-Key": created["key"]}
    assert (await client.get("/api/v1/auth/verify", headers=real)).status == 200
    auth = client.app[AUTH].identify
    # In front of fullon with an api_keys table, any fullon_ak_<base64url> may be one of
    # fullon's keys (their length is not fixed): only the "!" one is malformed there.
    platform_keys = db_mode == "attach-orm"
    for bad in ("fullon_ak_short", "fullon_ak_" + "!" * 43, "fullon_ak_" + "a" * 44):
        resp = await client.get("/api/v1/auth/verify", headers={"X-API-Key": bad})
        assert resp.status == 401
    looked_up = 2 if platform_keys else 0
    assert len(auth._unknown_keys) == looked_up, "malformed keys must not be looked up"
    auth._unknown_keys.clear()
    fake = "fullon_ak_" + "b" * 43
    for _ in range(3):
        resp = await client.get("/api/v1/auth/verify", headers={"X-API-Key": fake})
        assert resp.status == 401
    assert len(auth._unknown_keys) == 1
    assert len(auth._keys) == 1, "the real key stays cached beside the misses"
    assert (await client.get("/api/v1/auth/verify", headers=real)).status == 200
