"""Queries on orders, including the status state machine."""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.store.conn import Conn, Viewer
from fullon_gateway.store.query import Where, fetch_new, fetch_page, fetch_row

COLUMNS = """order_id, user_id, bot_id, ex_id, symbol, side, order_type, volume, price, filled,
    status, reason, ex_order_id, created_at, updated_at"""
OPEN_STATUSES = ("New", "Open", "PartiallyFilled")
# The legal moves; Filled, Cancelled and Rejected are final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "New": ("Open", "Cancelled", "Rejected"),
    "Open": ("PartiallyFilled", "Filled", "Cancelled"),
    "PartiallyFilled": ("PartiallyFilled", "Filled", "Cancelled"),
    "Filled": (),
    "Cancelled": (),
    "Rejected": (),
}
STATUSES = tuple(TRANSITIONS)


def sources_of(target: str) -> list[str]:
    """States from which ``target`` may be reached."""
    return [src for src, targets in TRANSITIONS.items() if target in targets]


def filters(caller: Viewer, q: dict[str, Any], alias: str = "") -> Where:
    a = f"{alias}." if alias else ""
    return (
        Where()
        .owner(f"{a}user_id", caller, q.get("user_id"))
        .maybe(f"{a}bot_id = {{}}", q.get("bot_id"))
        .maybe(f"{a}ex_id = {{}}", q.get("ex_id"))
        .maybe(f"{a}symbol = {{}}", q.get("symbol"))
        .maybe(f"{a}side = {{}}", q.get("side"))
        .maybe(f"{a}status = {{}}", q.get("status"))
        .maybe(f"{a}created_at >= {{}}", q.get("since"))
        .maybe(f"{a}created_at < {{}}", q.get("until"))
    )


async def list_orders(
    conn: Conn,
    caller: Viewer,
    q: dict[str, Any],
    after: int | None,
    limit: int,
    open_only: bool = False,
) -> list[asyncpg.Record]:
    w = filters(caller, q)
    if open_only:
        w.add("status = ANY({}::text[])", list(OPEN_STATUSES))
    return await fetch_page(
        conn, f"SELECT {COLUMNS} FROM orders", w, "order_id", after, limit, descending=True
    )


async def by_id(conn: Conn, order_id: int) -> asyncpg.Record | None:
    return await fetch_row(conn, f"SELECT {COLUMNS} FROM orders WHERE order_id = $1", order_id)


async def create(conn: Conn, user_id: int, data: dict[str, Any]) -> asyncpg.Record:
    return await fetch_new(
        conn,
        f"""INSERT INTO orders (user_id, bot_id, ex_id, symbol, side, order_type, volume, price,
                                ex_order_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}""",
        user_id,
        data.get("bot_id"),
        data["ex_id"],
        data["symbol"],
        data["side"],
        data["order_type"],
        data["volume"],
        data.get("price"),
        data.get("ex_order_id"),
    )


async def set_status(
    conn: Conn, order_id: int, status: str, reason: str | None, filled: Any
) -> asyncpg.Record | None:
    """Move to ``status`` only from a state that may reach it (one atomic UPDATE)."""
    return await fetch_row(
        conn,
        f"""UPDATE orders
               SET status = $2, reason = coalesce($3, reason),
                   filled = CASE WHEN $2 = 'Filled' THEN volume ELSE coalesce($4, filled) END,
                   updated_at = now()
             WHERE order_id = $1 AND status = ANY($5::text[])
         RETURNING {COLUMNS}""",
        order_id,
        status,
        reason,
        filled,
        sources_of(status),
    )
