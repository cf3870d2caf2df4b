"""/api/v1/orm/views: dashboard figures aggregated in Postgres."""

from __future__ import annotations

from aiohttp import web

from fullon_gateway.auth.identity import caller_of
from fullon_gateway.handlers.orm_base import ORM, load_query
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import DB
from fullon_gateway.openapi import doc
from fullon_gateway.pagination import Page
from fullon_gateway.schemas.projection import Projection
from fullon_gateway.schemas.views import (
    BotDashboardQuery,
    BotDashboardRowOut,
    OverviewQuery,
    PortfolioQuery,
    PortfolioStatsOut,
    TradingOverviewOut,
)
from fullon_gateway.store import views as views_db

_dash_q = BotDashboardQuery()
_dash = Projection(BotDashboardRowOut())
_port_q = PortfolioQuery()
_port = Projection(PortfolioStatsOut())
_over_q = OverviewQuery()
_over = Projection(TradingOverviewOut())


class ViewsHandler:
    prefix = f"{ORM}/views"

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix
        return [
            web.get(f"{p}/bot-dashboard", self.bot_dashboard),
            web.get(f"{p}/portfolio-stats", self.portfolio_stats),
            web.get(f"{p}/trading-overview", self.trading_overview),
        ]

    @doc(query=BotDashboardQuery, response=BotDashboardRowOut, paged=True)
    async def bot_dashboard(self, request: web.Request) -> web.Response:
        """Per bot: orders, open orders, trades, wins, losses, win rate, PnL, fees, volume."""
        q = load_query(request, _dash_q)
        page = Page.from_query("bot_dashboard", q)
        rows = await views_db.bot_dashboard(
            request.app[DB], caller_of(request), q, page.after, page.limit
        )
        return json_response(page.body(rows, "bot_id", _dash.dump_many))

    @doc(query=PortfolioQuery, response=PortfolioStatsOut)
    async def portfolio_stats(self, request: web.Request) -> web.Response:
        """Accounts, bots, open orders and trade totals, with a breakdown per exchange account."""
        q = load_query(request, _port_q)
        data = await views_db.portfolio_stats(request.app[DB], caller_of(request), q)
        return json_response(_port.dump(data))

    @doc(query=OverviewQuery, response=TradingOverviewOut)
    async def trading_overview(self, request: web.Request) -> web.Response:
        """Trade totals, volume and PnL per symbol, and orders per status, over a time range."""
        q = load_query(request, _over_q)
        data = await views_db.trading_overview(request.app[DB], caller_of(request), q)
        return json_response(_over.dump(data))
