"""The app's resources, each opened and closed by one ``cleanup_ctx`` generator.

Each generator opens its resource with ``async with`` (so a failure after opening,
a failing migration say, still closes it), starts its background tasks before the
``yield`` and cancels and awaits them after it. ``CONTEXTS`` is the order they open
in (and close in reverse): Postgres and Redis first, then the hub, the auth service
that uses all three, the OHLCV loader, then the streams (fed by the hub, told of
revocations by the auth service) and the bridge from new bars to the live stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from fullon_gateway.auth.service import AUTH_CHANNEL, AuthService
from fullon_gateway.keys import (
    AUTH,
    DATABASE,
    DB,
    HUB,
    METRICS,
    OHLCV_LOADER,
    REDIS,
    SETTINGS,
    SOCKETS,
    STREAMS,
    WATCHER,
)
from fullon_gateway.ohlcv.loader import OhlcvLoader
from fullon_gateway.store.attach import PlatformKeys
from fullon_gateway.store.database import open_pool, prepare_database
from fullon_gateway.stream.fullon.watcher import Watcher
from fullon_gateway.stream.hub import Channel, Hub
from fullon_gateway.stream.live_bars import bars_to_stream
from fullon_gateway.stream.publish import Publisher
from fullon_gateway.stream.service import StreamService
from fullon_gateway.stream.sweeps import heartbeat_forever, revalidate_forever

log = logging.getLogger(__name__)

Context = Callable[[web.Application], AsyncIterator[None]]


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """A background task for the duration of the block: cancelled and awaited after."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def postgres(app: web.Application) -> AsyncIterator[None]:
    """app[DB]: the pool, on a database that exists and is migrated; app[DATABASE]: its
    mode (standalone, or attached to fullon's tables: store/attach)."""
    settings = app[SETTINGS]
    database = await prepare_database(settings)
    if database.attached:
        log.warning("attach mode: serving fullon's tables in place (gateway state in schema "
                    "%s)", database.search_path)
    pool = await open_pool(settings, database, settings.db_pool_min, settings.db_pool_max)
    async with pool:
        app[DB] = pool
        app[DATABASE] = database
        yield


async def redis(app: web.Application) -> AsyncIterator[None]:
    """app[REDIS]: the shared client for commands (pub/sub is the hub's)."""
    settings = app[SETTINGS]
    assert settings.redis_url
    # A blocking pool: past max_connections a command waits for a free connection
    # instead of failing (redis-py's default pool raises or grows without bound).
    # Retries with backoff: after a Redis restart every pooled connection is stale and
    # its next command fails once before reconnecting; the retry reconnects instead of
    # failing a snapshot read, a login or a resync.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_pool_size,
        timeout=settings.dependency_timeout,
        socket_connect_timeout=settings.dependency_timeout,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
    )
    try:
        async with aioredis.Redis(connection_pool=pool) as client:  # leaves the pool open
            app[REDIS] = client
            yield
    finally:
        await pool.disconnect()


async def hub(app: web.Application) -> AsyncIterator[None]:
    """app[HUB]: the process's one pub/sub connection."""
    settings = app[SETTINGS]
    assert settings.redis_url
    async with Hub(settings.redis_url, settings.redis_prefix,
                   settings.redis_idle_ping) as the_hub:
        app[HUB] = the_hub

        async def count_reconnect() -> None:
            app[METRICS].hub_reconnects.inc()

        the_hub.on_reconnect(count_reconnect)
        yield


async def auth(app: web.Application) -> AsyncIterator[None]:
    """app[AUTH]: identifies callers; told of revocations from every process."""
    settings = app[SETTINGS]
    service = AuthService(settings, app[DB], app[REDIS])
    if app[DATABASE].fullon_api_keys:
        service.identify.platform_keys = PlatformKeys(app[DB])
    app[AUTH] = service
    the_hub = app[HUB]
    the_hub.on_reconnect(service.on_hub_reconnect)
    channel = Channel(AUTH_CHANNEL)
    try:
        async with asyncio.timeout(max(settings.dependency_timeout, 1.0)):
            await the_hub.listen(channel, service.on_auth_message)
    except TimeoutError:
        # Start anyway: REST that needs only Postgres keeps working, /health says 503
        # until Redis answers, and the hub subscribes the channel when it connects.
        log.warning("Redis is not answering; starting without it and retrying")
        the_hub.keep(channel, service.on_auth_message)
    try:
        async with running(service.run_key_usage_flusher(), "api-key-usage"):
            yield
    finally:
        await service.stop()


async def ohlcv_loader(app: web.Application) -> AsyncIterator[None]:
    """app[OHLCV_LOADER]: trade ingestion into Postgres, with new-bar listeners."""
    app[OHLCV_LOADER] = OhlcvLoader(app[DB])
    yield


async def streams(app: web.Application) -> AsyncIterator[None]:
    """app[STREAMS]: subscriptions, resync after a reconnect, the socket sweeps."""
    settings = app[SETTINGS]
    service = StreamService(settings, app[REDIS], app[HUB], app[DB], app[METRICS],
                            app[SOCKETS])
    app[STREAMS] = service
    app[HUB].on_disconnect(service.on_hub_disconnect)
    app[HUB].on_reconnect(service.resync_all)
    app[AUTH].add_revocation_listener(service.on_revocation)  # the one listener
    try:
        async with (
            running(revalidate_forever(app[SOCKETS], app[AUTH], settings), "ws-revalidation"),
            running(heartbeat_forever(app[SOCKETS], settings), "ws-heartbeat"),
        ):
            yield
    finally:
        await service.stop()


async def live_bars(app: web.Application) -> AsyncIterator[None]:
    """Every 1m bar the loader makes is published on the live ``ohlcv`` stream."""
    settings = app[SETTINGS]
    listener = bars_to_stream(Publisher(app[REDIS], settings.redis_prefix, settings.history_len))
    app[OHLCV_LOADER].add_listener(listener)
    try:
        yield
    finally:
        app[OHLCV_LOADER].remove_listener(listener)


async def fullon_watcher(app: web.Application) -> AsyncIterator[None]:
    """app[WATCHER]: learns of every fullon_cache write and sequences it once
    (stream/fullon/watcher.py), on the hub's pub/sub connection."""
    settings = app[SETTINGS]
    assert settings.redis_url
    watcher = Watcher(app[HUB], settings.redis_url, app[REDIS], settings.redis_prefix,
                      settings.history_len, settings.keyspace_events)
    app[WATCHER] = watcher
    await watcher.start()
    try:
        yield
    finally:
        await watcher.stop()


CONTEXTS: tuple[Context, ...] = (postgres, redis, hub, auth, ohlcv_loader, streams, live_bars,
                                 fullon_watcher)
