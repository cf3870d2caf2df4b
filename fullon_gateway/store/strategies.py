"""Queries on the strategy catalog and bot strategies."""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.jsonutil import dumps_str
from fullon_gateway.store.conn import Conn, Viewer
from fullon_gateway.store.query import (
    Where,
    deleted,
    fetch_new,
    fetch_page,
    fetch_row,
    update_by_id,
)

CAT_COLUMNS = "cat_str_id, name, description, params, created_at"
COLUMNS = """bs.str_id, bs.bot_id, b.user_id, bs.cat_str_id, cs.name AS strategy, bs.size,
    bs.leverage, bs.params, bs.created_at, bs.updated_at"""
FROM = "bot_strategies bs JOIN bots b USING (bot_id) JOIN cat_strategies cs USING (cat_str_id)"


async def list_catalog(conn: Conn, after: int | None, limit: int) -> list[asyncpg.Record]:
    return await fetch_page(
        conn, f"SELECT {CAT_COLUMNS} FROM cat_strategies", Where(), "cat_str_id", after, limit
    )


async def catalog_by_id(conn: Conn, cat_str_id: int) -> asyncpg.Record | None:
    return await fetch_row(
        conn, f"SELECT {CAT_COLUMNS} FROM cat_strategies WHERE cat_str_id = $1", cat_str_id
    )


async def create_catalog(conn: Conn, data: dict[str, Any]) -> asyncpg.Record:
    return await fetch_new(
        conn,
        f"INSERT INTO cat_strategies (name, description, params) VALUES ($1, $2, $3::jsonb) "
        f"RETURNING {CAT_COLUMNS}",
        data["name"],
        data["description"],
        dumps_str(data["params"]),
    )


async def list_bot_strategies(
    conn: Conn, caller: Viewer, q: dict[str, Any], after: int | None, limit: int
) -> list[asyncpg.Record]:
    w = (
        Where()
        .owner("b.user_id", caller)
        .maybe("bs.bot_id = {}", q.get("bot_id"))
        .maybe("bs.cat_str_id = {}", q.get("cat_str_id"))
    )
    return await fetch_page(conn, f"SELECT {COLUMNS} FROM {FROM}", w, "bs.str_id", after, limit)


async def for_bot(conn: Conn, bot_id: int, after: int | None = None,
                  limit: int | None = None) -> list[asyncpg.Record]:
    """A bot's strategies in id order: a page past ``after``, or all of them."""
    return await fetch_page(conn, f"SELECT {COLUMNS} FROM {FROM}",
                            Where().add("bs.bot_id = {}", bot_id), "bs.str_id", after, limit)


async def by_id(conn: Conn, str_id: int) -> asyncpg.Record | None:
    return await fetch_row(conn, f"SELECT {COLUMNS} FROM {FROM} WHERE bs.str_id = $1", str_id)


async def create(conn: Conn, data: dict[str, Any]) -> asyncpg.Record:
    str_id = await conn.fetchval(
        """INSERT INTO bot_strategies (bot_id, cat_str_id, size, leverage, params)
           VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING str_id""",
        data["bot_id"],
        data["cat_str_id"],
        data["size"],
        data["leverage"],
        dumps_str(data["params"]),
    )
    row = await by_id(conn, str_id)
    assert row is not None
    return row


async def update(conn: Conn, str_id: int, changes: dict[str, Any]) -> asyncpg.Record | None:
    await update_by_id(conn, "bot_strategies", "str_id", str_id, changes, jsonb=("params",))
    return await by_id(conn, str_id)


async def delete(conn: Conn, str_id: int) -> bool:
    return deleted(await conn.execute("DELETE FROM bot_strategies WHERE str_id = $1", str_id))
