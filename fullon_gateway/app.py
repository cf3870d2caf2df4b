"""create_app(settings) -> web.Application. No I/O here: resources open in the
cleanup contexts of lifecycle.py, in the order given there."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from fullon_gateway import lifecycle
from fullon_gateway.auth.middleware import auth_middleware
from fullon_gateway.bodies import body_middleware, setup_bodies
from fullon_gateway.dashboard.views import DashboardHandler, setup_templates
from fullon_gateway.errors import error_middleware
from fullon_gateway.handlers.api_keys import ApiKeysHandler
from fullon_gateway.handlers.auth import AuthHandler
from fullon_gateway.handlers.favicon import FaviconHandler
from fullon_gateway.handlers.health import HealthHandler
from fullon_gateway.handlers.markets import MarketsHandler
from fullon_gateway.handlers.ohlcv import OhlcvHandler
from fullon_gateway.handlers.orm import OrmHandler
from fullon_gateway.handlers.services import ServicesHandler
from fullon_gateway.keys import METRICS, SETTINGS, SOCKETS, STARTED_AT
from fullon_gateway.metrics import Metrics, metrics_middleware
from fullon_gateway.openapi import OpenApiHandler
from fullon_gateway.settings import Settings
from fullon_gateway.stream.connection import GOING_AWAY
from fullon_gateway.stream.endpoint import StreamEndpoint
from fullon_gateway.stream.registry import SocketRegistry

log = logging.getLogger(__name__)


async def _on_startup(app: web.Application) -> None:
    # "ready" is logged by the CLI once the port is bound, not here (before the bind).
    pass


async def _on_shutdown(app: web.Application) -> None:
    # Sockets never finish on their own: close them so shutdown can proceed.
    await app[SOCKETS].close_all(GOING_AWAY, "server shutdown")


def create_app(settings: Settings) -> web.Application:
    if not settings.database_url or not settings.redis_url or not settings.jwt_secret:
        raise ValueError("create_app needs settings with database_url, redis_url and jwt_secret")
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[metrics_middleware, error_middleware, body_middleware, auth_middleware],
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[SOCKETS] = SocketRegistry()
    app[STARTED_AT] = time.monotonic()
    app.cleanup_ctx.extend(lifecycle.CONTEXTS)
    app.on_startup.append(_on_startup)
    setup_bodies(app)
    app.on_shutdown.append(_on_shutdown)
    setup_templates(app)
    for handler in (HealthHandler(), FaviconHandler(), AuthHandler(), ApiKeysHandler(),
                    OrmHandler(), OhlcvHandler(), OpenApiHandler(), DashboardHandler(),
                    StreamEndpoint(), ServicesHandler(), MarketsHandler()):
        app.add_routes(handler.routes())
    return app
