"""Every /api/v1/orm domain handler, composed into one entry for app.py (see ADR-001)."""

from __future__ import annotations

from aiohttp import web

from fullon_gateway.handlers.bots import BotsHandler
from fullon_gateway.handlers.exchanges import ExchangesHandler
from fullon_gateway.handlers.orders import OrdersHandler
from fullon_gateway.handlers.strategies import StrategiesHandler
from fullon_gateway.handlers.symbols import SymbolsHandler
from fullon_gateway.handlers.users import UsersHandler
from fullon_gateway.handlers.views import ViewsHandler


class OrmHandler:
    """Platform data over REST: one handler class per domain, each listing its routes."""

    domains = (
        UsersHandler,
        ExchangesHandler,
        SymbolsHandler,
        BotsHandler,
        StrategiesHandler,
        OrdersHandler,
        ViewsHandler,
    )

    def routes(self) -> list[web.RouteDef]:
        return [route for domain in self.domains for route in domain().routes()]
