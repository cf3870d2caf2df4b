"""/api/v1/orm/orders and /trades: bot orders with their status rules, and bot trades."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fullon_gateway.auth.identity import Caller, caller_of
from fullon_gateway.errors import Conflict, Invalid
from fullon_gateway.handlers.common import load_json, path_int
from fullon_gateway.handlers.orm_base import ORM, check_owner, db_errors, load_query, not_found
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import DB
from fullon_gateway.openapi import doc
from fullon_gateway.pagination import Page
from fullon_gateway.schemas.orders import (
    OrderCreateSchema,
    OrderListQuery,
    OrderOut,
    OrderStatusSchema,
)
from fullon_gateway.schemas.projection import Projection
from fullon_gateway.schemas.trades import (
    PerformanceOut,
    PerformanceQuery,
    TradeCreateSchema,
    TradeListQuery,
    TradeOut,
    TradeStatsOut,
    TradeStatsQuery,
)
from fullon_gateway.store import bots as bots_db
from fullon_gateway.store import exchanges as ex_db
from fullon_gateway.store import orders as orders_db
from fullon_gateway.store import trades as trades_db
from fullon_gateway.store.conn import Conn

_order = Projection(OrderOut())
_order_create = OrderCreateSchema()
_order_status = OrderStatusSchema()
_order_q = OrderListQuery()
_trade = Projection(TradeOut())
_trade_create = TradeCreateSchema()
_trade_q = TradeListQuery()
_stats_q = TradeStatsQuery()
_perf_q = PerformanceQuery()
_stats = Projection(TradeStatsOut())
_perf = Projection(PerformanceOut())


async def _owner_for(db: Conn, caller: Caller, data: dict[str, Any]) -> int:
    """The owner a new order/trade belongs to: the exchange account's, if the caller may
    use it; a bot given alongside must belong to the same owner."""
    owner = (await ex_db.owners_of(db, [data["ex_id"]])).get(data["ex_id"])
    if owner is None or not caller.can_see(owner):
        raise Invalid("no such exchange account", fields={"ex_id": ["no such exchange account"]})
    if data.get("bot_id") is not None and await bots_db.owner_of(db, data["bot_id"]) != owner:
        raise Invalid("no such bot on this account's owner", fields={"bot_id": ["no such bot"]})
    return owner


class OrdersHandler:
    def routes(self) -> list[web.RouteDef]:
        o, t = f"{ORM}/orders", f"{ORM}/trades"
        return [
            web.get(o, self.list_orders),
            web.post(o, self.create_order),
            web.get(f"{o}/open", self.open_orders),
            web.get(f"{o}/{{order_id}}", self.get_order),
            web.patch(f"{o}/{{order_id}}/status", self.set_status),
            web.get(t, self.list_trades),
            web.post(t, self.create_trade),
            web.get(f"{t}/stats", self.trade_stats),
            web.get(f"{t}/performance", self.performance),
            web.get(f"{t}/{{trade_id}}", self.get_trade),
        ]

    @doc(query=OrderListQuery, response=OrderOut, paged=True)
    async def list_orders(self, request: web.Request) -> web.Response:
        """Orders, newest first, filtered by bot, account, symbol, side, status or time."""
        q = load_query(request, _order_q)
        page = Page.from_query("orders", q)
        rows = await orders_db.list_orders(
            request.app[DB], caller_of(request), q, page.after, page.limit
        )
        return json_response(page.body(rows, "order_id", _order.dump_many))

    @doc(query=OrderListQuery, response=OrderOut, paged=True)
    async def open_orders(self, request: web.Request) -> web.Response:
        """Orders still working (New, Open, PartiallyFilled), newest first."""
        q = load_query(request, _order_q)
        page = Page.from_query("orders_open", q)
        rows = await orders_db.list_orders(
            request.app[DB], caller_of(request), q, page.after, page.limit, open_only=True
        )
        return json_response(page.body(rows, "order_id", _order.dump_many))

    @doc(body=OrderCreateSchema, response=OrderOut, status=201)
    async def create_order(self, request: web.Request) -> web.Response:
        """Record a new order (status New) on one of the caller's exchange accounts."""
        data = await load_json(request, _order_create)
        db = request.app[DB]
        owner = await _owner_for(db, caller_of(request), data)
        with db_errors("order"):
            row = await orders_db.create(db, owner, data)
        return json_response(_order.dump(row), status=201)

    @doc(response=OrderOut)
    async def get_order(self, request: web.Request) -> web.Response:
        """One order."""
        row = await orders_db.by_id(request.app[DB], path_int(request, "order_id", bits=64))
        return json_response(_order.dump(check_owner(row, caller_of(request), "order")))

    @doc(body=OrderStatusSchema, response=OrderOut)
    async def set_status(self, request: web.Request) -> web.Response:
        """Move an order along its life: New -> Open -> PartiallyFilled -> Filled.

        New may also become Cancelled or Rejected, Open and PartiallyFilled may become
        Cancelled; Filled, Cancelled and Rejected are final. Any other move is a 409.
        """
        data = await load_json(request, _order_status)
        db = request.app[DB]
        order_id = path_int(request, "order_id", bits=64)
        order = check_owner(await orders_db.by_id(db, order_id), caller_of(request), "order")
        if data["filled"] is not None and data["filled"] > order["volume"]:
            raise Invalid(
                "filled cannot exceed the order's volume",
                fields={"filled": [f"must be at most the volume ({order['volume']})"]},
            )
        row = await orders_db.set_status(
            db, order["order_id"], data["status"], data["reason"], data["filled"]
        )
        if row is None:
            current = await orders_db.by_id(db, order["order_id"])
            if current is None:
                raise not_found("order")
            allowed = orders_db.TRANSITIONS[current["status"]]
            raise Conflict(
                f"an order cannot go from {current['status']} to {data['status']} "
                f"(allowed: {', '.join(allowed) or 'none, the status is final'})",
                code="illegal_status_transition",
            )
        return json_response(_order.dump(row))

    @doc(query=TradeListQuery, response=TradeOut, paged=True)
    async def list_trades(self, request: web.Request) -> web.Response:
        """Trades, newest first, filtered by bot, account, order, symbol, side, dry-run or time."""
        q = load_query(request, _trade_q)
        page = Page.from_query("trades", q)
        rows = await trades_db.list_trades(
            request.app[DB], caller_of(request), q, page.after, page.limit
        )
        return json_response(page.body(rows, "trade_id", _trade.dump_many))

    @doc(body=TradeCreateSchema, response=TradeOut, status=201)
    async def create_trade(self, request: web.Request) -> web.Response:
        """Record a trade (a fill), optionally for one of the owner's orders."""
        data = await load_json(request, _trade_create)
        db = request.app[DB]
        owner = await _owner_for(db, caller_of(request), data)
        if data.get("order_id") is not None:
            order = await orders_db.by_id(db, data["order_id"])
            if order is None or order["user_id"] != owner or order["ex_id"] != data["ex_id"]:
                raise Invalid(
                    "no such order on this exchange account", fields={"order_id": ["no such order"]}
                )
        with db_errors("trade"):
            row = await trades_db.create(db, owner, data)
        return json_response(_trade.dump(row), status=201)

    @doc(response=TradeOut)
    async def get_trade(self, request: web.Request) -> web.Response:
        """One trade."""
        row = await trades_db.by_id(request.app[DB], path_int(request, "trade_id", bits=64))
        return json_response(_trade.dump(check_owner(row, caller_of(request), "trade")))

    @doc(query=TradeStatsQuery, response=TradeStatsOut)
    async def trade_stats(self, request: web.Request) -> web.Response:
        """Count, wins, losses, win rate, PnL, fees and volume of the matching trades (SQL)."""
        q = load_query(request, _stats_q)
        row = await trades_db.stats(request.app[DB], caller_of(request), q)
        return json_response(_stats.dump(row))

    @doc(query=PerformanceQuery, response=PerformanceOut)
    async def performance(self, request: web.Request) -> web.Response:
        """PnL per hour/day/week/month with its running total (SQL window)."""
        q = load_query(request, _perf_q)
        rows = await trades_db.performance(request.app[DB], caller_of(request), q)
        return json_response(_perf.dump({"bucket": q["bucket"], "points": rows}))
