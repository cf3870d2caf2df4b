"""Ingested trades reach the live ``ohlcv`` stream: each new or changed 1m bar is
published (snapshot + history + channel) as soon as its load has committed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from fullon_gateway.keys import OHLCV_LOADER, REDIS, SETTINGS
from fullon_gateway.ohlcv.loader import Bar
from fullon_gateway.publish import Publisher

# A load can touch thousands of minutes (a backfill); the live stream carries the
# newest ones only. Subscribers get older bars from the REST candles endpoint.
LIVE_BARS_PER_LOAD = 60


def bars_to_stream(publisher: Publisher) -> object:
    async def on_bars(exchange: str, symbol: str, bars: list[Bar]) -> None:
        # In time order, so seq order matches bar order.
        for bar in bars[-LIVE_BARS_PER_LOAD:]:
            ts = bar["timestamp"]
            millis = int(ts.timestamp() * 1000) if hasattr(ts, "timestamp") else int(ts)
            await publisher.ohlcv(exchange, symbol, "1m", {**bar, "timestamp": millis})

    return on_bars


async def live_ohlcv_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after the loader and Redis): publish every 1m bar the loader makes."""
    settings = app[SETTINGS]
    listener = bars_to_stream(Publisher(app[REDIS], settings.redis_prefix, settings.history_len))
    app[OHLCV_LOADER].add_listener(listener)  # type: ignore[arg-type]
    yield
    app[OHLCV_LOADER].remove_listener(listener)  # type: ignore[arg-type]
