"""Attach mode: deciding the mode from the live catalog, and leaving fullon's tables as
they are through start, migrate and a full round of REST writes."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import asyncpg
import pytest

from fullon_gateway import cli
from fullon_gateway.keys import DATABASE
from fullon_gateway.store import attach
from fullon_gateway.store.database import prepare_database
from fullon_gateway.store.pool import _with_database
from tests import fullon_shape
from tests.conftest import PASSWORD
from tests.modes import attach_modes
from tests.rest.support import call, make_bot, make_exchange, make_order


@pytest.fixture
async def scratch_db(settings):
    """An empty database of its own on the test server; dropped afterwards."""
    # _with_database keeps the embedded server's ``?host=/socket/dir`` form working.
    name = f"fgw_scratch_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_with_database(settings.database_url, "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(settings.database_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_empty_database_is_standalone_and_gets_the_gateways_schema(settings, scratch_db):
    """An empty database is standalone: the gateway's own tables are made in public, and a
    second start still finds it standalone (its own tables are recognised)."""
    s = dataclasses.replace(settings, database_url=scratch_db)
    first = await prepare_database(s)
    assert first.mode == attach.STANDALONE and "001_auth" in first.applied
    again = await prepare_database(s)
    assert again.mode == attach.STANDALONE and again.applied == []


@pytest.mark.parametrize("shape", fullon_shape.SHAPES)
async def test_fullon_database_is_attached_without_touching_public(settings, scratch_db, shape):
    """A database holding fullon's tables (either shape) is attached: the gateway's state
    lands in schema gateway, and a second start applies nothing."""
    conn = await asyncpg.connect(scratch_db)
    try:
        await fullon_shape.build(conn, shape)
        before = await fullon_shape.catalog_snapshot(conn)
    finally:
        await conn.close()
    s = dataclasses.replace(settings, database_url=scratch_db)
    first = await prepare_database(s)
    assert first.mode == attach.ATTACH
    assert first.fullon_api_keys is (shape == "orm")
    assert first.applied[:2] == ["001_gateway_state", "002_ohlcv"]
    assert (await prepare_database(s)).applied == []
    conn = await asyncpg.connect(scratch_db)
    try:
        assert await fullon_shape.catalog_snapshot(conn) == before
        gateway_tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'gateway'")}
        assert {"sessions", "refresh_tokens", "api_keys", "user_state",
                "ohlcv_trades"} <= gateway_tables
    finally:
        await conn.close()


async def test_other_databases_are_refused_naming_what_was_found(settings, scratch_db, capsys):
    """A database that is neither empty, the gateway's nor fullon's is refused with one
    sentence naming its tables; `migrate` prints it and exits 2, creating nothing."""
    await _execute(scratch_db, "CREATE TABLE invoices (id int); CREATE TABLE customers (id int)")
    s = dataclasses.replace(settings, database_url=scratch_db)
    with pytest.raises(attach.AttachError, match=r"neither empty.*customers, invoices"):
        await prepare_database(s)
    status = await asyncio.to_thread(cli.main, ["migrate", "--database-url", scratch_db])
    assert status == 2
    assert "customers, invoices" in capsys.readouterr().err
    conn = await asyncpg.connect(scratch_db)
    try:
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'gateway'") == 0
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") \
            == 2
    finally:
        await conn.close()


async def test_a_fullon_database_missing_tables_is_refused_naming_them(settings, scratch_db):
    """fullon's users table without the rest is named as fullon's, with what is missing."""
    await _execute(scratch_db, "CREATE TABLE users (uid int, mail text, password text)")
    s = dataclasses.replace(settings, database_url=scratch_db)
    with pytest.raises(attach.AttachError, match=r"looks like fullon's.*table\(s\) cat_exchanges"):
        await prepare_database(s)


@attach_modes
async def test_a_full_run_leaves_fullon_table_definitions_unchanged(client, make_account,
                                                                    database_url):
    """Start (with migrate), then every kind of REST write (users, accounts, bots,
    strategies, feeds, orders, trades, keys, deletes) and a second migrate: fullon's
    catalog (columns, constraints, indexes, triggers, owners, grants) is as before."""
    assert client.app[DATABASE].attached
    conn = await asyncpg.connect(database_url)
    try:
        before = await fullon_shape.catalog_snapshot(conn)
    finally:
        await conn.close()
    admin = await make_account("admin")
    user = await make_account()
    kraken = await call(client, "POST", "/exchanges/catalog", admin, 201, json={"name": "kraken"})
    sym = await call(client, "POST", "/symbols", admin, 201, json={
        "cat_ex_id": kraken["cat_ex_id"], "symbol": "BTC/USD", "base": "BTC", "quote": "USD"})
    strat = await call(client, "POST", "/strategies/catalog", admin, 201, json={
        "name": "trend", "params": {"period": {"type": "int", "default": 14}}})
    ex = await make_exchange(client, user, kraken["cat_ex_id"], "main")
    bot = await make_bot(client, user, "b1", ex_ids=[ex["ex_id"]])
    await call(client, "POST", "/strategies/bot-strategies", user, 201, json={
        "bot_id": bot["bot_id"], "cat_str_id": strat["cat_str_id"], "params": {"period": 20}})
    await call(client, "POST", f"/bots/{bot['bot_id']}/feeds", user, 201,
               json={"symbol_id": sym["symbol_id"], "period": "minutes"})
    order = await make_order(client, user, ex["ex_id"], bot_id=bot["bot_id"])
    await call(client, "POST", "/trades", user, 201, json={
        "ex_id": ex["ex_id"], "order_id": order["order_id"], "symbol": "BTC/USD", "side": "buy",
        "volume": "0.1", "price": "100", "fee": "0.1"})
    key = await call(client, "POST", "/api_keys/me", user, 201,
                     json={"name": "k", "scopes": ["read"]})
    await call(client, "PATCH", f"/api_keys/{key['id']}/deactivate", user)
    await call(client, "PATCH", "/users/me", user, json={"name": "renamed"})
    await call(client, "DELETE", f"/users/{user.user_id}", admin, 204)
    assert await asyncio.to_thread(cli.main, ["migrate", "--database-url", database_url]) == 0
    conn = await asyncpg.connect(database_url)
    try:
        assert await fullon_shape.catalog_snapshot(conn) == before
    finally:
        await conn.close()
    assert PASSWORD  # the accounts above logged in with it through the gateway


_COLUMNS = """SELECT table_name, column_name, data_type, is_nullable, column_default
                FROM information_schema.columns
               WHERE table_schema = $1 AND table_name = ANY($2::text[])"""
_INDEXES = """SELECT tablename, indexname, indexdef FROM pg_indexes
               WHERE schemaname = $1 AND tablename = ANY($2::text[])"""
# The gateway's own tables in both modes: attach/001_gateway_state.sql repeats their
# definitions from migrations/001_auth.sql without the foreign key into users (a view
# there), so this is what keeps the two copies from drifting apart.
_OWN = ["sessions", "refresh_tokens", "api_keys"]


async def _own_tables(url: str, schema: str) -> tuple[set[tuple], set[tuple]]:
    conn = await asyncpg.connect(url)
    try:
        # Names qualified by the schema (a sequence, an index's table) compare unqualified.
        def plain(row: asyncpg.Record) -> tuple:
            return tuple(v.replace(f"{schema}.", "") if isinstance(v, str) else v for v in row)

        columns = {plain(r) for r in await conn.fetch(_COLUMNS, schema, _OWN)}
        indexes = {plain(r) for r in await conn.fetch(_INDEXES, schema, _OWN)}
        return columns, indexes
    finally:
        await conn.close()


async def test_the_gateways_own_tables_are_alike_in_both_modes(settings, scratch_db):
    """sessions, refresh_tokens and api_keys have the same columns (types, nullability,
    defaults) and indexes attached as standalone; attach only adds ``fullon_key_id``
    (the adopted fullon key) and its unique index."""
    conn = await asyncpg.connect(scratch_db)
    try:
        await fullon_shape.build(conn, "base")
    finally:
        await conn.close()
    assert (await prepare_database(dataclasses.replace(settings, database_url=scratch_db))
            ).mode == attach.ATTACH
    name = f"fgw_scratch_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_with_database(settings.database_url, "postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        standalone_url = _with_database(settings.database_url, name)
        assert (await prepare_database(dataclasses.replace(
            settings, database_url=standalone_url))).mode == attach.STANDALONE
        columns, indexes = await _own_tables(standalone_url, "public")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    a_columns, a_indexes = await _own_tables(scratch_db, attach.SCHEMA)
    assert {c[0] for c in columns} == set(_OWN)
    extra_columns = {c for c in a_columns if c not in columns}
    assert {(c[0], c[1]) for c in extra_columns} == {("api_keys", "fullon_key_id")}
    assert a_columns - extra_columns == columns
    assert {i[1] for i in a_indexes - indexes} == {"api_keys_fullon_key_id_key"}
    assert a_indexes >= indexes
