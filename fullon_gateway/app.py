"""create_app(settings) -> web.Application. No I/O here: resources open in cleanup_ctx.

Each resource has one cleanup_ctx generator: open before its ``yield``, close after.
Order matters: Postgres and Redis first, then the auth service that uses both, then
the hub that feeds it invalidations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from fullon_gateway.auth.middleware import auth_middleware
from fullon_gateway.auth.service import AUTH_CHANNEL, AuthService
from fullon_gateway.dashboard.views import DashboardHandler, setup_templates
from fullon_gateway.errors import error_middleware
from fullon_gateway.fullon.watcher import watcher_ctx
from fullon_gateway.handlers.api_keys import ApiKeysHandler
from fullon_gateway.handlers.auth import AuthHandler
from fullon_gateway.handlers.health import HealthHandler
from fullon_gateway.handlers.ohlcv import OhlcvHandler
from fullon_gateway.handlers.orm import OrmHandler
from fullon_gateway.handlers.streams import StreamsHandler
from fullon_gateway.keys import AUTH, DB, HUB, METRICS, REDIS, SETTINGS, SOCKETS, STARTED_AT
from fullon_gateway.metrics import Metrics, metrics_middleware
from fullon_gateway.ohlcv.context import ohlcv_loader_ctx
from fullon_gateway.ohlcv.live import live_ohlcv_ctx
from fullon_gateway.openapi import OpenApiHandler
from fullon_gateway.settings import Settings
from fullon_gateway.store.migrate import migrate
from fullon_gateway.store.pool import create_pool, ensure_database
from fullon_gateway.stream.hub import Hub
from fullon_gateway.stream.registry import SocketRegistry
from fullon_gateway.stream.service import streams_ctx

log = logging.getLogger(__name__)

WS_GOING_AWAY = 1001


async def _postgres(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.database_url
    await ensure_database(settings.database_url)
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    async with pool.acquire() as conn:
        await migrate(conn)
    app[DB] = pool
    yield
    await pool.close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.redis_url
    # A blocking pool: past max_connections a command waits for a free connection
    # instead of failing (redis-py's default pool raises or grows without bound).
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=64, timeout=settings.dependency_timeout,
        socket_connect_timeout=settings.dependency_timeout,
    )
    client = aioredis.Redis(connection_pool=pool)
    app[REDIS] = client
    yield
    await client.aclose()
    await pool.disconnect()


async def _auth_and_hub(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.redis_url
    auth = AuthService(settings, app[DB], app[REDIS])
    hub = Hub(settings.redis_url, settings.redis_prefix)
    app[AUTH] = auth
    app[HUB] = hub
    hub.on_reconnect(auth.on_hub_reconnect)

    async def count_reconnect() -> None:
        app[METRICS].hub_reconnects.inc()

    hub.on_reconnect(count_reconnect)
    await hub.start()
    try:
        await hub.subscribe(AUTH_CHANNEL, auth.on_auth_message,
                            timeout=max(settings.dependency_timeout, 1.0))
    except TimeoutError:
        # Start anyway: REST that needs only Postgres keeps working, /health says 503
        # until Redis answers, and the hub subscribes the channel when it connects.
        log.warning("Redis is not answering; starting without it and retrying")
        hub.keep(AUTH_CHANNEL, auth.on_auth_message)
    flusher = asyncio.create_task(auth.run_key_usage_flusher(), name="api-key-usage")
    yield
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    await auth.stop()
    await hub.stop()


def _close_revoked_sockets(app: web.Application) -> None:
    """Revocations (from any process) close the sockets that used the credential."""
    reasons = {"session": "session revoked", "user": "user disabled",
               "user_role": "role changed", "api_key": "key revoked"}

    def on_revocation(kind: str, ident: object) -> None:
        for sock in app[SOCKETS].affected_by(kind, ident):
            asyncio.get_running_loop().create_task(sock.close_with(1008, reasons[kind]))

    app[AUTH].add_revocation_listener(on_revocation)


async def _on_startup(app: web.Application) -> None:
    _close_revoked_sockets(app)
    settings = app[SETTINGS]
    log.info("fullon_gateway ready: http://%s:%d (env=%s)",
             settings.host, settings.port, settings.env)


async def _on_shutdown(app: web.Application) -> None:
    # Sockets never finish on their own: close them so shutdown can proceed.
    await app[SOCKETS].close_all(WS_GOING_AWAY, "server shutdown")


def create_app(settings: Settings) -> web.Application:
    if not settings.database_url or not settings.redis_url or not settings.jwt_secret:
        raise ValueError("create_app needs settings with database_url, redis_url and jwt_secret")
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            metrics_middleware(lambda r: r.app[METRICS]),
            error_middleware,
            auth_middleware(lambda r: r.app[AUTH]),
        ],
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[SOCKETS] = SocketRegistry()
    app[STARTED_AT] = time.monotonic()
    app.cleanup_ctx.extend([_postgres, _redis, _auth_and_hub, ohlcv_loader_ctx,
                             streams_ctx, live_ohlcv_ctx, watcher_ctx])
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    setup_templates(app)
    for handler in (HealthHandler(), AuthHandler(), ApiKeysHandler(), OrmHandler(),
                    OhlcvHandler(), OpenApiHandler(), DashboardHandler(), StreamsHandler()):
        app.add_routes(handler.routes())
    return app
