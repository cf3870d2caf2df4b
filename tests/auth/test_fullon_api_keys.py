"""In front of fullon's newer stack (it has an api_keys table, keys in plaintext): its
keys are accepted on first use and then kept only as a hash; revoked or expired keys
are refused; no key reaches a log."""

from __future__ import annotations

import dataclasses
import logging

import asyncpg
import pytest

from fullon_gateway.auth.tokens import sha256
from tests import fullon_shape

pytestmark = pytest.mark.parametrize("db_mode", ["attach-orm"], indirect=True)
ME = "/api/v1/orm/users/me"


@pytest.fixture
def settings(settings):
    # No identity cache: every request re-reads the key (and so asks fullon about it).
    return dataclasses.replace(settings, auth_cache_ttl=0.0)


@pytest.fixture
async def fullon(client, database_url):
    conn = await asyncpg.connect(database_url)
    seeded = await fullon_shape.seed_two_users(conn, "orm")
    yield conn, seeded
    await conn.close()


async def _text_in_gateway_schema(conn, needle):
    """Every text-like value of every table in schema gateway that contains ``needle``."""
    hits = []
    for r in await conn.fetch(
            """SELECT table_name, column_name FROM information_schema.columns
                WHERE table_schema = 'gateway' AND data_type IN ('text', 'character varying',
                                                                  'bytea', 'ARRAY')"""):
        found = await conn.fetchval(
            f'SELECT count(*) FROM gateway."{r["table_name"]}" '
            f'WHERE position($1 in "{r["column_name"]}"::text) > 0', needle)
        if found:
            hits.append(f"{r['table_name']}.{r['column_name']}")
    return hits


async def test_a_fullon_key_is_accepted_then_kept_only_as_a_hash(client, fullon, caplog):
    """Alice's fullon key opens /users/me as Alice (fullon's uid) on first use; the gateway
    then holds its SHA-256, linked to fullon's row, and the key itself nowhere in its
    schema or in the log; later uses work the same."""
    conn, seeded = fullon
    key, alice = seeded["keys"]["alice"], seeded["users"]["alice"]
    with caplog.at_level(logging.DEBUG):
        resp = await client.get(ME, headers={"X-API-Key": key})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["user_id"] == alice.uid
        resp = await client.get(ME, headers={"Authorization": f"Bearer {key}"})
        assert resp.status == 200
    row = await conn.fetchrow(
        "SELECT user_id, key_hash, fullon_key_id FROM gateway.api_keys WHERE key_hash = $1",
        sha256(key))
    assert row is not None and row["user_id"] == alice.uid
    assert row["fullon_key_id"] == await conn.fetchval(
        "SELECT api_key_id FROM public.api_keys WHERE key = $1", key)
    assert await conn.fetchval("SELECT count(*) FROM gateway.api_keys") == 1, "adopted once"
    assert await _text_in_gateway_schema(conn, key) == []
    assert await _text_in_gateway_schema(conn, key[10:]) == []
    assert key not in caplog.text and key[10:] not in caplog.text


async def test_revoked_and_expired_fullon_keys_are_refused(client, fullon):
    """Bob's key, inactive in fullon, is refused and never adopted; Alice's key stops
    working once fullon deactivates it, and a key past its (naive UTC) expires_at is
    refused."""
    conn, seeded = fullon
    bob_key, alice_key = seeded["keys"]["bob"], seeded["keys"]["alice"]
    assert (await client.get(ME, headers={"X-API-Key": bob_key})).status == 401
    assert await conn.fetchval("SELECT count(*) FROM gateway.api_keys") == 0
    assert (await client.get(ME, headers={"X-API-Key": alice_key})).status == 200
    await conn.execute("UPDATE public.api_keys SET is_active = false WHERE key = $1", alice_key)
    assert (await client.get(ME, headers={"X-API-Key": alice_key})).status == 401
    expired = "fullon_ak_expired-key-0123456789"
    await conn.execute(
        """INSERT INTO public.api_keys (uid, key, name, is_active, expires_at)
           VALUES ($1, $2, 'old', true, (now() AT TIME ZONE 'UTC') - interval '1 minute')""",
        seeded["users"]["alice"].uid, expired)
    assert (await client.get(ME, headers={"X-API-Key": expired})).status == 401
    soon = "fullon_ak_valid-for-an-hour-0123456789"
    await conn.execute(
        """INSERT INTO public.api_keys (uid, key, name, is_active, expires_at)
           VALUES ($1, $2, 'new', true, (now() AT TIME ZONE 'UTC') + interval '1 hour')""",
        seeded["users"]["alice"].uid, soon)
    assert (await client.get(ME, headers={"X-API-Key": soon})).status == 200


async def test_a_key_unknown_to_both_is_refused(client, fullon):
    """A well-formed key neither the gateway nor fullon issued is 401."""
    resp = await client.get(ME, headers={"X-API-Key": "fullon_ak_nobody-knows-this-key"})
    assert resp.status == 401
