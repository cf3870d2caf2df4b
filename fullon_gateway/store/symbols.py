"""Queries on symbols."""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.store.conn import Conn
from fullon_gateway.store.query import (
    Where,
    deleted,
    fetch_page,
    fetch_row,
    update_by_id,
)

COLUMNS = """s.symbol_id, s.cat_ex_id, c.name AS exchange, s.symbol, s.base, s.quote,
    s.decimals, s.futures, s.updateframe, s.backtest, s.active, s.created_at"""
FROM = "symbols s JOIN cat_exchanges c USING (cat_ex_id)"


def _filters(q: dict[str, Any]) -> Where:
    return (
        Where()
        .maybe("s.cat_ex_id = {}", q.get("cat_ex_id"))
        .maybe("c.name = lower({})", q.get("exchange"))
        .maybe("upper(s.base) = upper({})", q.get("base"))
        .maybe("upper(s.quote) = upper({})", q.get("quote"))
        .maybe("s.futures = {}", q.get("futures"))
        .maybe("s.active = {}", q.get("active"))
    )


async def list_symbols(
    conn: Conn, q: dict[str, Any], after: int | None, limit: int
) -> list[asyncpg.Record]:
    w = _filters(q)
    return await fetch_page(conn, f"SELECT {COLUMNS} FROM {FROM}", w, "s.symbol_id", after, limit)


async def search(
    conn: Conn, q: dict[str, Any], after: int | None, limit: int
) -> list[asyncpg.Record]:
    w = _filters({"exchange": q.get("exchange")})
    w.add("strpos(lower(s.symbol), lower({})) > 0", q["q"])
    return await fetch_page(conn, f"SELECT {COLUMNS} FROM {FROM}", w, "s.symbol_id", after, limit)


async def by_id(conn: Conn, symbol_id: int) -> asyncpg.Record | None:
    return await fetch_row(conn, f"SELECT {COLUMNS} FROM {FROM} WHERE s.symbol_id = $1", symbol_id)


async def create(conn: Conn, data: dict[str, Any]) -> asyncpg.Record:
    cols = list(data)
    w = Where()
    values = ", ".join(w.arg(data[c]) for c in cols)
    symbol_id = await conn.fetchval(
        f"INSERT INTO symbols ({', '.join(cols)}) VALUES ({values}) RETURNING symbol_id", *w.args
    )
    row = await by_id(conn, symbol_id)
    assert row is not None
    return row


async def update(conn: Conn, symbol_id: int, changes: dict[str, Any]) -> asyncpg.Record | None:
    await update_by_id(conn, "symbols", "symbol_id", symbol_id, changes, touch=False)
    return await by_id(conn, symbol_id)


async def delete(conn: Conn, symbol_id: int) -> bool:
    return deleted(await conn.execute("DELETE FROM symbols WHERE symbol_id = $1", symbol_id))
