"""Queries on trades: lists with filters, statistics and performance, all in SQL."""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.store.conn import Conn, Viewer
from fullon_gateway.store.query import Where, fetch_new, fetch_page, fetch_row, fetch_rows

COLUMNS = """trade_id, user_id, bot_id, ex_id, order_id, symbol, side, volume, price, cost, fee,
    roi, roi_pct, dry_run, ts"""
BUCKETS = ("hour", "day", "week", "month")
# Win/loss counts only trades that closed a position (roi known).
STATS = """count(*)::int AS trades,
    count(*) FILTER (WHERE roi > 0)::int AS wins,
    count(*) FILTER (WHERE roi <= 0)::int AS losses,
    CASE WHEN count(roi) > 0
         THEN (count(*) FILTER (WHERE roi > 0))::float8 / count(roi) END AS win_rate,
    coalesce(sum(roi), 0) AS pnl,
    coalesce(sum(fee), 0) AS fees,
    coalesce(sum(cost), 0) AS volume,
    max(roi) AS best_trade,
    min(roi) AS worst_trade,
    max(ts) AS last_trade_at"""


def filters(caller: Viewer, q: dict[str, Any]) -> Where:
    return (
        Where()
        .owner("user_id", caller, q.get("user_id"))
        .maybe("bot_id = {}", q.get("bot_id"))
        .maybe("ex_id = {}", q.get("ex_id"))
        .maybe("order_id = {}", q.get("order_id"))
        .maybe("symbol = {}", q.get("symbol"))
        .maybe("side = {}", q.get("side"))
        .maybe("dry_run = {}", q.get("dry_run"))
        .maybe("ts >= {}", q.get("since"))
        .maybe("ts < {}", q.get("until"))
    )


async def list_trades(
    conn: Conn, caller: Viewer, q: dict[str, Any], after: int | None, limit: int
) -> list[asyncpg.Record]:
    w = filters(caller, q)
    return await fetch_page(
        conn, f"SELECT {COLUMNS} FROM trades", w, "trade_id", after, limit, descending=True
    )


async def by_id(conn: Conn, trade_id: int) -> asyncpg.Record | None:
    return await fetch_row(conn, f"SELECT {COLUMNS} FROM trades WHERE trade_id = $1", trade_id)


async def create(conn: Conn, user_id: int, data: dict[str, Any]) -> asyncpg.Record:
    return await fetch_new(
        conn,
        f"""INSERT INTO trades (user_id, bot_id, ex_id, order_id, symbol, side, volume, price,
                                cost, fee, roi, roi_pct, dry_run, ts)
            VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8::numeric, $7::numeric * $8::numeric,
                    $9, $10, $11, $12,
                    coalesce($13, now()))
            RETURNING {COLUMNS}""",
        user_id,
        data.get("bot_id"),
        data["ex_id"],
        data.get("order_id"),
        data["symbol"],
        data["side"],
        data["volume"],
        data["price"],
        data["fee"],
        data.get("roi"),
        data.get("roi_pct"),
        data["dry_run"],
        data.get("ts"),
    )


async def stats(conn: Conn, caller: Viewer, q: dict[str, Any]) -> asyncpg.Record:
    w = filters(caller, q)
    return await fetch_new(conn, f"SELECT {STATS} FROM trades {w.sql()}", *w.args)


async def performance(conn: Conn, caller: Viewer, q: dict[str, Any]) -> list[asyncpg.Record]:
    """PnL per time bucket with its running total (a window over the buckets)."""
    bucket = q["bucket"]
    assert bucket in BUCKETS  # validated by the schema; never user text in SQL
    w = filters(caller, q)
    return await fetch_rows(
        conn,
        f"""SELECT period, trades, wins, pnl, fees, volume,
                   sum(pnl) OVER (ORDER BY period) AS cumulative_pnl
              FROM (SELECT date_trunc('{bucket}', ts) AS period,
                           count(*)::int AS trades,
                           count(*) FILTER (WHERE roi > 0)::int AS wins,
                           coalesce(sum(roi), 0) AS pnl,
                           coalesce(sum(fee), 0) AS fees,
                           coalesce(sum(cost), 0) AS volume
                      FROM trades {w.sql()}
                     GROUP BY 1) AS b
             ORDER BY period""",
        *w.args,
    )
