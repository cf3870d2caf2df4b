"""A fullon-shaped database, built from the facts sheet of fullon's schema.

Two shapes: ``base`` is fullon's install script (base.sql: 18 tables in public,
``users.password`` character(64), naive-UTC timestamps, no ``symbols.quote``, no
``api_keys``); ``orm`` adds what the newer fullon_orm is known to have
(``users.external_id``, ``symbols.quote``, an ``api_keys`` table holding plaintext
keys, a varchar password column). The DDL is written here from the documented
columns, keys and defaults; nothing of fullon's is imported.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg
import bcrypt

SHAPES = ("base", "orm")

_NOW = "(now() AT TIME ZONE 'UTC')"

BASE_SQL = f"""
CREATE TABLE public.users (
    uid serial NOT NULL, mail varchar(80) NOT NULL, password character(64) NOT NULL,
    f2a varchar(16) NOT NULL, role varchar(10) NOT NULL, name varchar(50) NOT NULL,
    lastname varchar(50) NOT NULL, phone varchar(12) NOT NULL, id_num varchar(15) NOT NULL,
    note text, manager integer, "timestamp" timestamp NOT NULL DEFAULT {_NOW},
    active boolean NOT NULL DEFAULT true,
    CONSTRAINT users_pk PRIMARY KEY (uid), CONSTRAINT unique_mail UNIQUE (mail),
    CONSTRAINT client_manager FOREIGN KEY (manager) REFERENCES public.users (uid)
        MATCH FULL ON DELETE RESTRICT ON UPDATE RESTRICT);
CREATE TABLE public.cat_exchanges (
    cat_ex_id serial NOT NULL, name varchar(30) NOT NULL, ohlcv_view text,
    CONSTRAINT cat_exchange_pk PRIMARY KEY (cat_ex_id), CONSTRAINT unique_ex UNIQUE (name));
CREATE TABLE public.exchanges (
    ex_id serial NOT NULL, uid integer NOT NULL, cat_ex_id integer NOT NULL,
    name varchar(50) NOT NULL, test boolean NOT NULL DEFAULT false,
    active boolean NOT NULL DEFAULT true, "timestamp" timestamp NOT NULL DEFAULT {_NOW},
    CONSTRAINT exchange_pk PRIMARY KEY (ex_id),
    CONSTRAINT unique_user_exchange UNIQUE (uid, cat_ex_id, name),
    CONSTRAINT user_id FOREIGN KEY (uid) REFERENCES public.users (uid)
        MATCH FULL ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT exchange_cat_exchange FOREIGN KEY (cat_ex_id)
        REFERENCES public.cat_exchanges (cat_ex_id) MATCH FULL ON DELETE RESTRICT
        ON UPDATE RESTRICT);
CREATE TABLE public.cat_exchanges_params (
    cat_ex_id integer NOT NULL, name varchar(20) NOT NULL, value varchar(20) NOT NULL,
    CONSTRAINT unique_param_symbol UNIQUE (cat_ex_id, name),
    CONSTRAINT cat_ex_id FOREIGN KEY (cat_ex_id) REFERENCES public.cat_exchanges (cat_ex_id)
        MATCH FULL);
CREATE TABLE public.symbols (
    symbol_id serial NOT NULL, symbol varchar(20) NOT NULL, cat_ex_id integer NOT NULL,
    updateframe varchar(2) NOT NULL DEFAULT '1h', backtest smallint NOT NULL DEFAULT 30,
    decimals smallint NOT NULL DEFAULT 8, base varchar(6) NOT NULL, ex_base varchar(6),
    futures boolean NOT NULL DEFAULT false, only_ticker boolean NOT NULL DEFAULT false,
    CONSTRAINT symbol_pk PRIMARY KEY (symbol_id),
    CONSTRAINT "symbol_Exchange" UNIQUE (symbol, cat_ex_id),
    CONSTRAINT cat_ex_id FOREIGN KEY (cat_ex_id) REFERENCES public.cat_exchanges (cat_ex_id)
        MATCH FULL ON DELETE RESTRICT ON UPDATE RESTRICT);
CREATE TABLE public.cat_strategies (
    cat_str_id serial NOT NULL, name varchar(50) NOT NULL, take_profit double precision,
    stop_loss double precision, trailing_stop double precision, timeout double precision,
    pre_load_bars smallint NOT NULL DEFAULT 200, feeds smallint NOT NULL DEFAULT 2,
    pairs boolean DEFAULT false,
    CONSTRAINT cat_strategies_pk PRIMARY KEY (cat_str_id), CONSTRAINT "unique name" UNIQUE (name));
CREATE TABLE public.cat_strategies_params (
    cat_str_id integer NOT NULL, name text NOT NULL, value text NOT NULL,
    CONSTRAINT unique_param_symbol1 UNIQUE (cat_str_id, name),
    CONSTRAINT cat_str_id FOREIGN KEY (cat_str_id) REFERENCES public.cat_strategies (cat_str_id)
        MATCH FULL ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE public.bots (
    bot_id serial NOT NULL, uid integer NOT NULL, name varchar(50) NOT NULL,
    dry_run boolean DEFAULT false, active boolean NOT NULL DEFAULT false,
    "timestamp" timestamp NOT NULL DEFAULT {_NOW},
    CONSTRAINT bot_pk PRIMARY KEY (bot_id), CONSTRAINT bot_id_name_unique UNIQUE (bot_id, name),
    CONSTRAINT bot_user FOREIGN KEY (uid) REFERENCES public.users (uid)
        MATCH FULL ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE public.strategies (
    str_id serial NOT NULL, bot_id integer, cat_str_id integer NOT NULL,
    take_profit double precision, stop_loss double precision, trailing_stop double precision,
    timeout double precision, leverage double precision NOT NULL DEFAULT 1,
    size_pct double precision, size double precision, size_currency varchar(5),
    pre_load_bars smallint, feeds smallint DEFAULT 2, pairs boolean DEFAULT false,
    CONSTRAINT strategies_pk PRIMARY KEY (str_id),
    CONSTRAINT cat_str_id FOREIGN KEY (cat_str_id) REFERENCES public.cat_strategies (cat_str_id)
        MATCH SIMPLE ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT many_str_one_bot FOREIGN KEY (bot_id) REFERENCES public.bots (bot_id)
        MATCH SIMPLE ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE public.strategies_params (
    str_id integer NOT NULL, name text NOT NULL, value text NOT NULL,
    CONSTRAINT unique_param_symbol2 UNIQUE (str_id, name),
    CONSTRAINT cat_id FOREIGN KEY (str_id) REFERENCES public.strategies (str_id)
        MATCH FULL ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE public.feeds (
    feed_id serial NOT NULL, str_id integer NOT NULL, symbol_id integer NOT NULL,
    period varchar(10) NOT NULL, compression smallint NOT NULL, "order" smallint NOT NULL,
    CONSTRAINT feed_pk PRIMARY KEY (feed_id),
    CONSTRAINT feed_symbol FOREIGN KEY (symbol_id) REFERENCES public.symbols (symbol_id)
        MATCH FULL ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT feed_strategies FOREIGN KEY (str_id) REFERENCES public.strategies (str_id)
        MATCH SIMPLE ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE public.bot_exchanges (
    bot_id integer NOT NULL, ex_id integer NOT NULL,
    CONSTRAINT unique_record UNIQUE (bot_id, ex_id),
    CONSTRAINT ex_to_bots FOREIGN KEY (bot_id) REFERENCES public.bots (bot_id)
        MATCH FULL ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT bots_to_ex FOREIGN KEY (ex_id) REFERENCES public.exchanges (ex_id)
        MATCH FULL ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE public.bot_log (
    bot_id integer NOT NULL, feed_num smallint NOT NULL, ex_id integer NOT NULL,
    symbol text NOT NULL, "position" numeric NOT NULL, message text NOT NULL,
    "timestamp" timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT bot_uid FOREIGN KEY (bot_id) REFERENCES public.bots (bot_id)
        MATCH FULL ON DELETE CASCADE ON UPDATE CASCADE);
CREATE TABLE public.orders (
    order_id serial NOT NULL, bot_id integer NOT NULL, uid integer NOT NULL,
    ex_id integer NOT NULL, ex_order_id varchar(64), cat_ex_id integer NOT NULL,
    exchange varchar(50) NOT NULL, symbol varchar(20) NOT NULL, order_type varchar(15) NOT NULL,
    side varchar(4) NOT NULL, volume double precision NOT NULL, final_volume double precision,
    price double precision, plimit double precision, tick double precision,
    futures boolean NOT NULL DEFAULT false, status varchar(20) NOT NULL, command varchar(64),
    reason varchar(35) NOT NULL, "timestamp" timestamp NOT NULL DEFAULT {_NOW},
    CONSTRAINT orders_pk PRIMARY KEY (order_id));
CREATE INDEX uid_ex_id ON public.orders (uid, ex_id, status);
CREATE INDEX bot_symbol_index ON public.orders (bot_id, status, symbol);
CREATE TABLE public.trades (
    trade_id serial NOT NULL, ex_trade_id varchar(64) NOT NULL, ex_order_id varchar(64) NOT NULL,
    uid integer NOT NULL, ex_id integer NOT NULL, symbol varchar(20) NOT NULL,
    order_type varchar(15) NOT NULL, side varchar(4) NOT NULL, volume double precision NOT NULL,
    price double precision NOT NULL, cost double precision NOT NULL, fee double precision NOT NULL,
    cur_volume double precision, cur_avg_price double precision, cur_avg_cost double precision,
    cur_fee double precision, roi double precision, roi_pct double precision,
    total_fee double precision, leverage double precision,
    "time" timestamp NOT NULL DEFAULT {_NOW},
    CONSTRAINT trades_pk PRIMARY KEY (trade_id),
    CONSTRAINT unique_order_id UNIQUE (ex_trade_id, ex_order_id));
CREATE UNIQUE INDEX "one oid" ON public.trades (trade_id);
CREATE INDEX uid_ex_id_trades ON public.trades (uid, ex_id);
CREATE TABLE public.dry_trades (
    trade_id serial NOT NULL, bot_id integer NOT NULL, uid integer NOT NULL,
    ex_id integer NOT NULL, symbol varchar(20) NOT NULL, side varchar(4) NOT NULL,
    volume double precision NOT NULL, price double precision NOT NULL,
    cost double precision NOT NULL, fee double precision NOT NULL, roi double precision,
    roi_pct double precision, reason varchar(35), closingtrade boolean NOT NULL DEFAULT false,
    "timestamp" timestamp NOT NULL DEFAULT {_NOW},
    CONSTRAINT trades_simul_pk PRIMARY KEY (trade_id));
CREATE UNIQUE INDEX "one oid_cp" ON public.dry_trades (trade_id);
CREATE INDEX uid_ex_id_trades_cp ON public.dry_trades (uid, ex_id);
CREATE TABLE public.exchange_history (
    ex_id integer NOT NULL, user_id integer NOT NULL, currency varchar(15) NOT NULL,
    balance double precision NOT NULL, comment text, "timestamp" timestamp NOT NULL,
    CONSTRAINT one_exchange_one_history FOREIGN KEY (ex_id) REFERENCES public.exchanges (ex_id)
        MATCH FULL,
    CONSTRAINT users_account_exchange FOREIGN KEY (user_id) REFERENCES public.users (uid)
        MATCH FULL);
CREATE TABLE public.simulations (
    num serial NOT NULL, bot_id integer NOT NULL, name varchar(35) NOT NULL, json json,
    CONSTRAINT serial_primary PRIMARY KEY (num), CONSTRAINT bot_name UNIQUE (bot_id, name),
    CONSTRAINT bot_id_bot_id FOREIGN KEY (bot_id) REFERENCES public.bots (bot_id) MATCH SIMPLE);
CREATE FUNCTION public.first_agg(anyelement, anyelement) RETURNS anyelement
    LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $1';
CREATE FUNCTION public.last_agg(anyelement, anyelement) RETURNS anyelement
    LANGUAGE sql IMMUTABLE STRICT AS 'SELECT $2';
CREATE AGGREGATE public.first(anyelement) (SFUNC = public.first_agg, STYPE = anyelement);
CREATE AGGREGATE public.last(anyelement) (SFUNC = public.last_agg, STYPE = anyelement);
"""

# What the newer fullon_orm adds (column types are not public: plausible ones).
ORM_SQL = """
ALTER TABLE public.users ADD COLUMN external_id varchar(100);
ALTER TABLE public.users ALTER COLUMN password TYPE varchar(255);
ALTER TABLE public.symbols ADD COLUMN quote varchar(10);
CREATE TABLE public.api_keys (
    api_key_id serial PRIMARY KEY,
    uid integer NOT NULL REFERENCES public.users (uid) ON DELETE CASCADE,
    key varchar(255) NOT NULL UNIQUE, name varchar(100) NOT NULL, description text,
    scopes text, is_active boolean NOT NULL DEFAULT true, expires_at timestamp,
    last_used_at timestamp, created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'));
"""

FULLON_TABLES = (
    "users", "cat_exchanges", "exchanges", "cat_exchanges_params", "symbols", "cat_strategies",
    "cat_strategies_params", "bots", "strategies", "strategies_params", "feeds", "bot_exchanges",
    "bot_log", "orders", "trades", "dry_trades", "exchange_history", "simulations",
)


async def build(conn: asyncpg.Connection, shape: str) -> None:
    assert shape in SHAPES
    async with conn.transaction():
        await conn.execute(BASE_SQL)
        if shape == "orm":
            await conn.execute(ORM_SQL)


def tables(shape: str) -> tuple[str, ...]:
    return FULLON_TABLES + (("api_keys",) if shape == "orm" else ())


def bcrypt_hash(password: str) -> str:
    # Cost 4 keeps the suite fast; fullon uses the default 12, which verifies the same way.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


@dataclass
class FullonUser:
    uid: int
    mail: str
    password: str
    ex_id: int
    bot_id: int


async def seed_two_users(conn: asyncpg.Connection, shape: str) -> dict[str, Any]:
    """Rows the way fullon's services write them: two users (Alice's bcrypt hash in the
    shape's password column, so padded to 64 in base.sql; Bob's as well), the catalog,
    one exchange account and one bot each, an order and a trade each, and in the orm
    shape a plaintext API key per user (one active, one revoked)."""
    cat_ex_id = await conn.fetchval(
        "INSERT INTO public.cat_exchanges (name, ohlcv_view) VALUES ('kraken', '') "
        "RETURNING cat_ex_id")
    if shape == "orm":
        await conn.execute(
            "INSERT INTO public.symbols (symbol, cat_ex_id, base, quote) "
            "VALUES ('BTC/USD', $1, 'BTC', 'USD')", cat_ex_id)
    else:
        await conn.execute(
            "INSERT INTO public.symbols (symbol, cat_ex_id, base) VALUES ('BTC/USD', $1, 'USD')",
            cat_ex_id)
    users: dict[str, FullonUser] = {}
    for who, mail, password in (("alice", "alice@fullon", "alice-pw-1234"),
                                ("bob", "bob@fullon", "bob-pw-5678")):
        uid = await conn.fetchval(
            """INSERT INTO public.users (mail, password, f2a, role, name, lastname, phone, id_num)
               VALUES ($1, $2, '---', 'user', $3, 'Fullon', '', '') RETURNING uid""",
            mail, bcrypt_hash(password), who.title())
        ex_id = await conn.fetchval(
            "INSERT INTO public.exchanges (uid, cat_ex_id, name) VALUES ($1, $2, $3) "
            "RETURNING ex_id", uid, cat_ex_id, f"kraken-{who}")
        bot_id = await conn.fetchval(
            "INSERT INTO public.bots (uid, name, dry_run, active) VALUES ($1, $2, true, true) "
            "RETURNING bot_id", uid, f"{who}-bot")
        await conn.execute("INSERT INTO public.bot_exchanges (bot_id, ex_id) VALUES ($1, $2)",
                           bot_id, ex_id)
        await conn.execute(
            """INSERT INTO public.orders (bot_id, uid, ex_id, ex_order_id, cat_ex_id, exchange,
                   symbol, order_type, side, volume, price, status, reason, "timestamp")
               VALUES ($1, $2, $3, $4, $5, 'kraken', 'BTC/USD', 'limit', 'buy', 0.5, 30000,
                       'New', '', $6)""",
            bot_id, uid, ex_id, f"ex-{who}-1", cat_ex_id, dt.datetime(2026, 1, 2, 3, 4, 5))
        await conn.execute(
            """INSERT INTO public.trades (ex_trade_id, ex_order_id, uid, ex_id, symbol,
                   order_type, side, volume, price, cost, fee, "time")
               VALUES ($1, $2, $3, $4, 'BTC/USD', 'limit', 'buy', 0.5, 30000, 15000, 1.5, $5)""",
            f"t-{who}-1", f"ex-{who}-1", uid, ex_id, dt.datetime(2026, 1, 2, 3, 5, 0))
        users[who] = FullonUser(uid, mail, password, ex_id, bot_id)
    keys: dict[str, str] = {}
    if shape == "orm":
        for who, active in (("alice", True), ("bob", False)):
            key = f"fullon_ak_{who}-legacy-key-0123456789"
            await conn.execute(
                "INSERT INTO public.api_keys (uid, key, name, scopes, is_active) "
                "VALUES ($1, $2, $3, '[\"read\", \"write\"]', $4)",
                users[who].uid, key, f"{who}-key", active)
            keys[who] = key
    return {"users": users, "cat_ex_id": cat_ex_id, "keys": keys}


CATALOG_SQL = """
SELECT 'relation' AS what, c.relname AS name,
       concat_ws(' ', c.relkind, pg_get_userbyid(c.relowner), c.relacl::text) AS detail
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 'column', c.relname || '.' || a.attname,
       concat_ws(' ', format_type(a.atttypid, a.atttypmod), a.attnotnull,
                 pg_get_expr(d.adbin, d.adrelid))
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 'index', i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public'
UNION ALL
-- Internal triggers too: a foreign key from another schema to a fullon table would
-- add some here.
SELECT 'trigger', c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'
UNION ALL
SELECT 'rule', r.tablename || '.' || r.rulename, r.definition
  FROM pg_rules r WHERE r.schemaname = 'public'
UNION ALL
SELECT 'policy', p.tablename || '.' || p.policyname, p.qual FROM pg_policies p
 WHERE p.schemaname = 'public'
ORDER BY 1, 2, 3
"""


async def catalog_snapshot(conn: asyncpg.Connection) -> list[tuple[str, str, str]]:
    """Every definition of fullon's schema: relations (kind, owner, grants), columns
    (type, null, default), constraints, indexes, triggers (internal ones included),
    rules and policies."""
    return [(r["what"], r["name"], r["detail"]) for r in await conn.fetch(CATALOG_SQL)]
