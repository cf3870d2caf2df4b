"""Every typed key the application stores state under, in one place.

A leaf module: the classes it names are imported for type checking only, so any
module may import these keys without pulling in (or cycling through) what they hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import asyncio

    import asyncpg
    import redis.asyncio as aioredis

    from fullon_gateway.auth.service import AuthService
    from fullon_gateway.metrics import Metrics
    from fullon_gateway.ohlcv.loader import OhlcvLoader
    from fullon_gateway.settings import Settings
    from fullon_gateway.store.database import Database
    from fullon_gateway.stream.fullon.watcher import Watcher
    from fullon_gateway.stream.hub import Hub
    from fullon_gateway.stream.registry import SocketRegistry
    from fullon_gateway.stream.service import StreamService

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DB: web.AppKey[asyncpg.Pool] = web.AppKey("db")
DATABASE: web.AppKey[Database] = web.AppKey("database")  # its mode: standalone or attach
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis")
HUB: web.AppKey[Hub] = web.AppKey("hub")
AUTH: web.AppKey[AuthService] = web.AppKey("auth")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
SOCKETS: web.AppKey[SocketRegistry] = web.AppKey("sockets")
STREAMS: web.AppKey[StreamService] = web.AppKey("streams")
STARTED_AT: web.AppKey[float] = web.AppKey("started_at")
OHLCV_LOADER: web.AppKey[OhlcvLoader] = web.AppKey("ohlcv_loader")
WATCHER: web.AppKey[Watcher] = web.AppKey("fullon_watcher")
# Set when shutdown starts: a request body still arriving is answered before the grace ends.
DRAINING: web.AppKey[asyncio.Event] = web.AppKey("draining")
