"""OHLCV history: trades and candles in Postgres.

- ``loader``: bulk COPY ingestion, incremental 1m bars, new-bar listeners;
- ``store``: reads (symbols, trades, candles of every timeframe);
- ``timeframes``: the 15 timeframes and their UTC buckets;
- ``seed``: a random-walk trade history for the demo.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from fullon_gateway.keys import DB, OHLCV_LOADER
from fullon_gateway.ohlcv.loader import OhlcvLoader


async def ohlcv_loader_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the app's loader, on the app's pool (after the Postgres context).

    Listeners for new 1m bars (the live ``ohlcv`` stream) attach with
    ``app[OHLCV_LOADER].add_listener(cb)``.
    """
    app[OHLCV_LOADER] = OhlcvLoader(app[DB])
    yield
