"""Attach mode: serve from a fullon platform's own Postgres tables, in place.

This package owns the whole mapping between fullon's schema and the gateway's
queries, so a difference in fullon's schema is a change here and nowhere else:

- ``detect`` reads the live catalog and decides: an empty database (or the gateway's
  own) is standalone; fullon's tables mean attach; anything else is refused with one
  sentence naming what was found.
- ``prepare`` (attach) creates schema ``gateway`` with the gateway's own state
  (``001_gateway_state.sql``: sessions, refresh tokens, hashed API keys, argon2id
  hashes, OHLCV) and ``mapping.sql``: one view per relation the gateway's queries use,
  named and shaped like the standalone tables, over fullon's tables, each with an
  INSTEAD OF trigger that writes to fullon's columns. Connections then run with
  ``search_path = gateway``, so the same store/ queries serve both modes.
- ``PlatformKeys`` adopts fullon's plaintext API keys on first use (stored only as a
  hash in ``gateway.api_keys``) and checks, whenever the gateway re-reads an adopted
  key, that fullon has not revoked or expired it.

fullon's tables are never altered: no DDL touches schema ``public``, and no foreign
key, trigger or index is added to its tables (a foreign key would add triggers to the
referenced table).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg

from fullon_gateway.settings import SettingsError
from fullon_gateway.store.migrate import Migration, available, migrate

log = logging.getLogger(__name__)

SCHEMA = "gateway"
FULLON_SCHEMA = "public"
STANDALONE, ATTACH = "standalone", "attach"

# What the mapping reads and writes, per fullon table (base.sql; the newer ORM adds
# columns, e.g. users.external_id, symbols.quote, and the api_keys table).
REQUIRED: dict[str, set[str]] = {
    "users": {"uid", "mail", "password", "f2a", "role", "name", "lastname", "phone",
              "id_num", "timestamp", "active"},
    "cat_exchanges": {"cat_ex_id", "name", "ohlcv_view"},
    "cat_exchanges_params": {"cat_ex_id", "name", "value"},
    "exchanges": {"ex_id", "uid", "cat_ex_id", "name", "test", "active", "timestamp"},
    "symbols": {"symbol_id", "symbol", "cat_ex_id", "updateframe", "backtest", "decimals",
                "base", "futures"},
    "cat_strategies": {"cat_str_id", "name"},
    "cat_strategies_params": {"cat_str_id", "name", "value"},
    "bots": {"bot_id", "uid", "name", "dry_run", "active", "timestamp"},
    "strategies": {"str_id", "bot_id", "cat_str_id", "leverage", "size"},
    "strategies_params": {"str_id", "name", "value"},
    "feeds": {"feed_id", "str_id", "symbol_id", "period", "compression", "order"},
    "bot_exchanges": {"bot_id", "ex_id"},
    "bot_log": {"bot_id", "feed_num", "ex_id", "symbol", "position", "message", "timestamp"},
    "orders": {"order_id", "bot_id", "uid", "ex_id", "ex_order_id", "cat_ex_id", "exchange",
               "symbol", "order_type", "side", "volume", "final_volume", "price", "status",
               "reason", "timestamp"},
    "trades": {"trade_id", "ex_trade_id", "ex_order_id", "uid", "ex_id", "symbol",
               "order_type", "side", "volume", "price", "cost", "fee", "roi", "roi_pct",
               "time"},
    "dry_trades": {"trade_id", "bot_id", "uid", "ex_id", "symbol", "side", "volume", "price",
                   "cost", "fee", "roi", "roi_pct", "timestamp"},
}
API_KEY_COLUMNS = {"api_key_id", "uid", "key", "name", "is_active", "expires_at"}
# The gateway's own tables in a standalone database.
GATEWAY_MARKERS = {"schema_migrations", "sessions", "refresh_tokens"}


class AttachError(SettingsError):
    """The database cannot be served; the message is one sentence for an operator."""


@dataclass(frozen=True)
class Catalog:
    """The tables and columns of fullon's schema, as the live catalog has them."""

    tables: dict[str, set[str]]

    def has(self, table: str, *columns: str) -> bool:
        return table in self.tables and set(columns) <= self.tables[table]

    @property
    def api_keys(self) -> bool:
        return self.has("api_keys", *API_KEY_COLUMNS)


async def read_catalog(conn: asyncpg.Connection, schema: str = FULLON_SCHEMA) -> Catalog:
    rows = await conn.fetch(
        """SELECT c.relname AS table_name, a.attname AS column_name
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v')""",
        schema,
    )
    tables: dict[str, set[str]] = {}
    for r in rows:
        tables.setdefault(r["table_name"], set()).add(r["column_name"])
    return Catalog(tables)


def decide(catalog: Catalog) -> str:
    """standalone, attach, or AttachError naming what was found."""
    found = set(catalog.tables)
    if not found or (found >= GATEWAY_MARKERS and catalog.has("users", "user_id", "email")):
        return STANDALONE
    if catalog.has("users", "uid", "mail", "password"):
        tables = [name for name in REQUIRED if name not in catalog.tables]
        columns = [f"{name}.{col}" for name, cols in REQUIRED.items() if name in catalog.tables
                   for col in sorted(cols - catalog.tables[name])]
        if tables or columns:
            what = "; ".join(part for part in (
                f"table(s) {', '.join(tables)}" if tables else "",
                f"column(s) {', '.join(columns[:8])}" if columns else "") if part)
            raise AttachError(
                "the database looks like fullon's (it has users.uid, users.mail and "
                f"users.password) but lacks what the gateway maps: {what}"
            )
        return ATTACH
    listed = ", ".join(sorted(found)[:8]) + (", ..." if len(found) > 8 else "")
    raise AttachError(
        f"the database is neither empty, nor the gateway's, nor fullon's: schema "
        f"{FULLON_SCHEMA} holds {len(found)} other table(s) ({listed})"
    )


async def detect(conn: asyncpg.Connection) -> str:
    return decide(await read_catalog(conn))


def _literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1)."""
    return "'" + text.replace("'", "''") + "'"


def render_mapping(catalog: Catalog, admin_mail: str) -> str:
    """mapping.sql with the placeholders for this database's shape filled in."""
    sql = resources.files(__name__).joinpath("mapping.sql").read_text()
    if catalog.has("symbols", "quote"):
        # The newer ORM: base and quote are what they say.
        base, quote = "s.base::text", "s.quote::text"
        columns, values = "base, quote", "NEW.base, NEW.quote"
        sets = "base = NEW.base, quote = NEW.quote"
    else:
        # base.sql: `base` held the settlement currency (the monolith's demo puts USD
        # there for BTC/USD), so base and quote are read from the symbol itself, and
        # `base` is written as fullon did.
        pair = "split_part(s.symbol::text, ':', 1)"
        base, quote = f"split_part({pair}, '/', 1)", f"split_part({pair}, '/', 2)"
        columns, values = "base", "left(coalesce(NEW.quote, ''), 6)"
        sets = "base = left(coalesce(NEW.quote, ''), 6)"
    replacements = {
        "@ADMIN_MAIL@": _literal(admin_mail),
        "@SYMBOL_BASE@": base,
        "@SYMBOL_QUOTE@": quote,
        "@SYMBOL_COLUMNS@": columns,
        "@SYMBOL_VALUES@": values,
        "@SYMBOL_SET@": sets,
    }
    for placeholder, value in replacements.items():
        sql = sql.replace(placeholder, value)
    return sql


def migrations() -> list[Migration]:
    """The gateway's own state in attach mode: its tables, then the OHLCV store."""
    state = resources.files(__name__).joinpath("001_gateway_state.sql").read_text()
    ohlcv = next(m for m in available() if m.name == "ohlcv")
    return [Migration(1, "gateway_state", state), Migration(2, "ohlcv", ohlcv.sql)]


_VIEWS = ("users", "cat_exchanges", "exchanges", "bots", "bot_exchanges", "symbols",
          "cat_strategies", "bot_strategies", "bot_feeds", "bot_logs", "orders", "trades")


async def prepare(conn: asyncpg.Connection, catalog: Catalog, admin_mail: str) -> list[str]:
    """Create or update schema gateway; return the names of what was applied now."""
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    await conn.execute(f"SET search_path = {SCHEMA}")
    try:
        applied = await migrate(conn, migrations())
        mapping = render_mapping(catalog, admin_mail)
        digest = hashlib.sha256(mapping.encode()).hexdigest()
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", 0x46474D4150)  # "FGMAP"
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS mapping (digest text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            current = await conn.fetchval("SELECT digest FROM mapping")
            if current != digest:
                # Views and their trigger functions are rebuilt as a whole; nothing
                # here holds data, and the transaction makes the swap atomic.
                views = ", ".join(f"{SCHEMA}.{v}" for v in _VIEWS)
                await conn.execute(f"DROP VIEW IF EXISTS {views} CASCADE")
                for view in _VIEWS:
                    await conn.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.{view}_write()")
                await conn.execute(mapping)
                await conn.execute("DELETE FROM mapping")
                await conn.execute("INSERT INTO mapping (digest) VALUES ($1)", digest)
                applied.append(f"mapping {digest[:12]}")
                log.info("attach mode: mapping over fullon's tables (re)created")
    finally:
        await conn.execute("RESET search_path")
    return applied


class PlatformKeys:
    """fullon's own API keys (its ``api_keys`` table holds them in plaintext).

    A key the gateway has no hash of is looked up there once; if fullon says it is
    active and unexpired, a row is added to ``gateway.api_keys`` holding only its
    hash. Later uses find the hash; each time the gateway re-reads the key (after its
    cache TTL) ``state`` asks fullon again, so a key fullon revokes stops working.
    The key itself is never stored, logged or returned.
    """

    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db

    async def adopt(self, key: str, key_hash: bytes, key_prefix: str) -> asyncpg.Record | None:
        async with self.db.acquire() as conn:
            found = await conn.fetchrow(
                f"""SELECT api_key_id, uid, name, is_active, expires_at
                      FROM {FULLON_SCHEMA}.api_keys WHERE key = $1""",
                key,
            )
            if found is None or not _usable(found["is_active"], found["expires_at"]):
                return None
            row: asyncpg.Record | None = await conn.fetchrow(
                """INSERT INTO api_keys (user_id, name, key_hash, key_prefix, scopes, is_active,
                                         expires_at, fullon_key_id)
                   VALUES ($1, $2, $3, $4, $5, true, $6, $7)
                   ON CONFLICT (key_hash) DO UPDATE SET fullon_key_id = excluded.fullon_key_id
                   RETURNING key_id, user_id, name, key_prefix, scopes, is_active, expires_at,
                             created_at, last_used_at""",
                found["uid"], found["name"] or "fullon key", key_hash, key_prefix,
                ["read", "trade"], _utc(found["expires_at"]), found["api_key_id"],
            )
            log.info("adopted fullon api key %s for user %s", found["api_key_id"], found["uid"])
            return row

    async def still_valid(self, key_id: int) -> bool:
        """Is the fullon key behind gateway key ``key_id`` (if it is one) still usable?"""
        row = await self.db.fetchrow(
            f"""SELECT k.fullon_key_id, f.is_active, f.expires_at
                  FROM api_keys k LEFT JOIN {FULLON_SCHEMA}.api_keys f
                    ON f.api_key_id = k.fullon_key_id
                 WHERE k.key_id = $1""",
            key_id,
        )
        if row is None or row["fullon_key_id"] is None:
            return True  # one the gateway issued: its own row says it all
        return _usable(row["is_active"], row["expires_at"])


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """fullon stores naive UTC; a naive value is read as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _usable(is_active: Any, expires_at: dt.datetime | None) -> bool:
    expires = _utc(expires_at)
    return bool(is_active) and (expires is None or expires > dt.datetime.now(dt.UTC))
