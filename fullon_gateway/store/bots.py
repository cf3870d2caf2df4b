"""Queries on bots, their exchange links, feeds and logs."""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.store.conn import Conn, Viewer
from fullon_gateway.store.orders import OPEN_STATUSES
from fullon_gateway.store.query import (
    Where,
    deleted,
    fetch_new,
    fetch_page,
    fetch_row,
    update_by_id,
)

COLUMNS = """b.bot_id, b.user_id, b.name, b.description, b.dry_run, b.active,
    array(SELECT be.ex_id FROM bot_exchanges be WHERE be.bot_id = b.bot_id ORDER BY be.ex_id)
        AS ex_ids,
    b.created_at, b.updated_at"""


async def list_bots(
    conn: Conn, caller: Viewer, q: dict[str, Any], after: int | None, limit: int
) -> list[asyncpg.Record]:
    w = (
        Where()
        .owner("b.user_id", caller, q.get("user_id"))
        .maybe("b.active = {}", q.get("active"))
        .maybe("b.dry_run = {}", q.get("dry_run"))
    )
    return await fetch_page(conn, f"SELECT {COLUMNS} FROM bots b", w, "b.bot_id", after, limit)


async def by_id(conn: Conn, bot_id: int) -> asyncpg.Record | None:
    return await fetch_row(conn, f"SELECT {COLUMNS} FROM bots b WHERE b.bot_id = $1", bot_id)


async def owner_of(conn: Conn, bot_id: int) -> int | None:
    owner: int | None = await conn.fetchval("SELECT user_id FROM bots WHERE bot_id = $1", bot_id)
    return owner


async def set_exchanges(conn: Conn, bot_id: int, user_id: int, ex_ids: list[int]) -> None:
    """Replace the bot's exchange links (the composite FK refuses other users' accounts)."""
    await conn.execute("DELETE FROM bot_exchanges WHERE bot_id = $1", bot_id)
    await conn.execute(
        """INSERT INTO bot_exchanges (bot_id, ex_id, user_id)
           SELECT $1, x, $2 FROM unnest($3::int[]) AS x ON CONFLICT DO NOTHING""",
        bot_id,
        user_id,
        ex_ids,
    )


async def create(conn: asyncpg.Connection, user_id: int, data: dict[str, Any]) -> asyncpg.Record:
    async with conn.transaction():
        bot_id = await conn.fetchval(
            """INSERT INTO bots (user_id, name, description, dry_run, active)
               VALUES ($1, $2, $3, $4, $5) RETURNING bot_id""",
            user_id,
            data["name"],
            data["description"],
            data["dry_run"],
            data["active"],
        )
        await set_exchanges(conn, bot_id, user_id, data["ex_ids"])
        row = await by_id(conn, bot_id)
    assert row is not None
    return row


async def update(
    conn: asyncpg.Connection, bot_id: int, user_id: int, data: dict[str, Any]
) -> asyncpg.Record | None:
    data = dict(data)
    ex_ids = data.pop("ex_ids", None)
    async with conn.transaction():
        await update_by_id(conn, "bots", "bot_id", bot_id, data)
        if ex_ids is not None:
            await set_exchanges(conn, bot_id, user_id, ex_ids)
        return await by_id(conn, bot_id)


async def delete_unless_open_orders(conn: asyncpg.Connection, bot_id: int) -> int | None:
    """Delete the bot unless it has open orders; return the open-order count that blocked it.

    The bot row is locked first: inserting an order for it takes a key-share lock on
    the same row (foreign key check), so no order can appear between count and delete.
    """
    async with conn.transaction():
        found = await conn.fetchval("SELECT bot_id FROM bots WHERE bot_id = $1 FOR UPDATE", bot_id)
        if found is None:
            return None
        open_orders: int = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE bot_id = $1 AND status = ANY($2::text[])",
            bot_id,
            list(OPEN_STATUSES),
        )
        if open_orders:
            return open_orders
        await conn.execute("DELETE FROM bots WHERE bot_id = $1", bot_id)
        return 0


FEED_COLUMNS = """f.feed_id, f.bot_id, f.symbol_id, s.symbol, c.name AS exchange, f.period,
    f.compression, f.created_at"""
FEED_FROM = (
    "bot_feeds f JOIN symbols s USING (symbol_id) JOIN cat_exchanges c ON c.cat_ex_id = s.cat_ex_id"
)


async def feeds(conn: Conn, bot_id: int, after: int | None = None,
                limit: int | None = None) -> list[asyncpg.Record]:
    """A bot's feeds in id order: a page past ``after``, or all of them."""
    return await fetch_page(conn, f"SELECT {FEED_COLUMNS} FROM {FEED_FROM}",
                            Where().add("f.bot_id = {}", bot_id), "f.feed_id", after, limit)


async def add_feed(conn: Conn, bot_id: int, data: dict[str, Any]) -> asyncpg.Record:
    feed_id = await conn.fetchval(
        "INSERT INTO bot_feeds (bot_id, symbol_id, period, compression) VALUES ($1, $2, $3, $4) "
        "RETURNING feed_id",
        bot_id,
        data["symbol_id"],
        data["period"],
        data["compression"],
    )
    return await fetch_new(
        conn, f"SELECT {FEED_COLUMNS} FROM {FEED_FROM} WHERE f.feed_id = $1", feed_id
    )


async def delete_feed(conn: Conn, bot_id: int, feed_id: int) -> bool:
    status = await conn.execute(
        "DELETE FROM bot_feeds WHERE bot_id = $1 AND feed_id = $2", bot_id, feed_id
    )
    return deleted(status)


async def add_log(conn: Conn, bot_id: int, level: str, message: str) -> asyncpg.Record:
    return await fetch_new(
        conn,
        "INSERT INTO bot_logs (bot_id, level, message) VALUES ($1, $2, $3) "
        "RETURNING log_id, bot_id, ts, level, message",
        bot_id,
        level,
        message,
    )


async def last_logs(conn: Conn, bot_id: int, after: int | None,
                    limit: int) -> list[asyncpg.Record]:
    """Newest first: a page before ``after`` (the last log_id of the page before)."""
    return await fetch_page(conn, "SELECT log_id, bot_id, ts, level, message FROM bot_logs",
                            Where().add("bot_id = {}", bot_id), "log_id", after, limit,
                            descending=True)
