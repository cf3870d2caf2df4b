"""Dashboard views, aggregated in Postgres (one query per view part, no Python loops)."""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.store.conn import Conn, Viewer
from fullon_gateway.store.orders import OPEN_STATUSES
from fullon_gateway.store.query import Where, fetch_page
from fullon_gateway.store.trades import STATS

# Per-bot figures; LATERAL keeps each aggregate on the bot's own index range.
BOT_DASHBOARD = f"""
SELECT b.bot_id, b.name, b.user_id, b.active, b.dry_run,
       o.orders, o.open_orders,
       t.trades, t.wins, t.losses, t.win_rate, t.pnl, t.fees, t.volume, t.last_trade_at
  FROM bots b
  CROSS JOIN LATERAL (
        SELECT count(*)::int AS orders,
               count(*) FILTER (WHERE status = ANY('{{{",".join(OPEN_STATUSES)}}}'::text[]))::int
                   AS open_orders
          FROM orders WHERE bot_id = b.bot_id) AS o
  CROSS JOIN LATERAL (SELECT {STATS} FROM trades WHERE bot_id = b.bot_id) AS t
"""


async def bot_dashboard(
    conn: Conn, caller: Viewer, q: dict[str, Any], after: int | None, limit: int
) -> list[asyncpg.Record]:
    w = (
        Where()
        .owner("b.user_id", caller, q.get("user_id"))
        .maybe("b.bot_id = {}", q.get("bot_id"))
        .maybe("b.active = {}", q.get("active"))
    )
    return await fetch_page(conn, f"{BOT_DASHBOARD}", w, "b.bot_id", after, limit)


async def portfolio_stats(conn: Conn, caller: Viewer, q: dict[str, Any]) -> dict[str, Any]:
    w = Where().owner("user_id", caller, q.get("user_id"))
    where = w.sql()
    both = f"{where} AND" if where else "WHERE"
    totals = await conn.fetchrow(
        f"""SELECT (SELECT count(*)::int FROM exchanges {where}) AS exchanges,
                   (SELECT count(*)::int FROM bots {where}) AS bots,
                   (SELECT count(*)::int FROM bots {both} active) AS active_bots,
                   (SELECT count(*)::int FROM orders {both}
                        status = ANY('{{{",".join(OPEN_STATUSES)}}}'::text[])) AS open_orders,
                   t.*
              FROM (SELECT {STATS} FROM trades {where}) AS t""",
        *w.args,
    )
    w2 = Where().owner("e.user_id", caller, q.get("user_id"))
    by_exchange = await conn.fetch(
        f"""SELECT e.ex_id, e.name, c.name AS exchange, t.trades, t.pnl, t.fees, t.volume
              FROM exchanges e JOIN cat_exchanges c USING (cat_ex_id)
              CROSS JOIN LATERAL (SELECT {STATS} FROM trades WHERE ex_id = e.ex_id) AS t
              {w2.sql()}
             ORDER BY e.ex_id""",
        *w2.args,
    )
    return {**dict(totals), "by_exchange": [dict(r) for r in by_exchange]}


async def trading_overview(conn: Conn, caller: Viewer, q: dict[str, Any]) -> dict[str, Any]:
    tw = (
        Where()
        .owner("user_id", caller, q.get("user_id"))
        .maybe("ts >= {}", q.get("since"))
        .maybe("ts < {}", q.get("until"))
    )
    by_symbol = await conn.fetch(
        f"""SELECT symbol, count(*)::int AS trades,
                   count(*) FILTER (WHERE side = 'buy')::int AS buys,
                   count(*) FILTER (WHERE side = 'sell')::int AS sells,
                   coalesce(sum(volume), 0) AS base_volume,
                   coalesce(sum(cost), 0) AS volume,
                   coalesce(sum(roi), 0) AS pnl,
                   coalesce(sum(fee), 0) AS fees
              FROM trades {tw.sql()}
             GROUP BY symbol ORDER BY volume DESC, symbol""",
        *tw.args,
    )
    totals = await conn.fetchrow(f"SELECT {STATS} FROM trades {tw.sql()}", *tw.args)
    ow = (
        Where()
        .owner("user_id", caller, q.get("user_id"))
        .maybe("created_at >= {}", q.get("since"))
        .maybe("created_at < {}", q.get("until"))
    )
    statuses = await conn.fetch(
        f"SELECT status, count(*)::int AS n FROM orders {ow.sql()} GROUP BY status", *ow.args
    )
    return {
        "totals": dict(totals),
        "by_symbol": [dict(r) for r in by_symbol],
        "orders_by_status": {r["status"]: r["n"] for r in statuses},
    }
