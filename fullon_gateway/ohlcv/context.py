"""The app's OHLCV loader, created on the app's pool (after the Postgres context)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from fullon_gateway.keys import DB, OHLCV_LOADER
from fullon_gateway.ohlcv.loader import OhlcvLoader


async def ohlcv_loader_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: app[OHLCV_LOADER].

    Listeners for new 1m bars (the live ``ohlcv`` stream) attach with
    ``app[OHLCV_LOADER].add_listener(cb)``; cb(exchange, symbol, bars) may be async.
    """
    app[OHLCV_LOADER] = OhlcvLoader(app[DB])
    yield
