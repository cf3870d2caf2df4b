"""Every typed key the application stores state under, in one place."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from fullon_gateway.auth.service import AuthService
from fullon_gateway.fullon.watcher import Watcher
from fullon_gateway.metrics import Metrics
from fullon_gateway.ohlcv.loader import OhlcvLoader
from fullon_gateway.settings import Settings
from fullon_gateway.stream.hub import Hub
from fullon_gateway.stream.registry import SocketRegistry
from fullon_gateway.stream.service import StreamService

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", asyncpg.Pool)
REDIS = web.AppKey("redis", aioredis.Redis)
HUB = web.AppKey("hub", Hub)
AUTH = web.AppKey("auth", AuthService)
METRICS = web.AppKey("metrics", Metrics)
SOCKETS = web.AppKey("sockets", SocketRegistry)
STREAMS = web.AppKey("streams", StreamService)
STARTED_AT = web.AppKey("started_at", float)
OHLCV_LOADER = web.AppKey("ohlcv_loader", OhlcvLoader)
WATCHER = web.AppKey("fullon_watcher", Watcher)
