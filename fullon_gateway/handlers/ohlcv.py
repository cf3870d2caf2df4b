"""/api/v1/ohlcv: market history (candles, trades, timeseries), its catalog, ingestion.

``{symbol}`` may hold ``/`` and ``:`` raw (``BTC/USD:BTC``) or percent-encoded: the
route variable matches across slashes, and the fixed suffixes (``/{timeframe}``,
``/ohlcv``) are matched from the end. Exchange names are case-insensitive (stored
lowercase); symbols are exact.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fullon_gateway.auth.identity import requires
from fullon_gateway.errors import NotFound
from fullon_gateway.handlers.common import read_json
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import DB, OHLCV_LOADER
from fullon_gateway.ohlcv import store
from fullon_gateway.ohlcv.timeframes import TIMEFRAMES
from fullon_gateway.schemas.ohlcv import (
    RangeSchema,
    TimeseriesQuerySchema,
    check_names,
    check_timeframe,
    load_trade_batch,
)

_range = RangeSchema()
_timeseries = TimeseriesQuerySchema()


def _names(request: web.Request) -> tuple[str, str]:
    return request.match_info["exchange"].strip().lower(), request.match_info["symbol"]


async def _symbol_id(request: web.Request, exchange: str, symbol: str) -> int:
    """The stored symbol's id; an exchange or symbol the store does not hold is a 404."""
    db = request.app[DB]
    sid = await store.find_symbol(db, exchange, symbol)
    if sid is None:
        if not await store.exchange_exists(db, exchange):
            raise NotFound(f"no OHLCV data for exchange {exchange!r}",
                           code="exchange_not_found")
        raise NotFound(f"no OHLCV data for symbol {symbol!r} on {exchange!r}",
                       code="symbol_not_found")
    return sid


class OhlcvHandler:
    prefix = "/api/v1/ohlcv"

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix
        return [
            web.get(f"{p}/exchanges", self.exchanges),
            web.get(f"{p}/exchanges/{{exchange}}/symbols", self.symbols),
            web.get(f"{p}/candles/{{exchange}}/{{symbol:.+}}/{{timeframe}}", self.candles),
            web.get(f"{p}/timeseries/{{exchange}}/{{symbol:.+}}/ohlcv", self.timeseries),
            web.get(f"{p}/trades/{{exchange}}/{{symbol:.+}}", self.trades),
            web.post(f"{p}/trades/{{exchange}}/{{symbol:.+}}", self.ingest),
        ]

    async def exchanges(self, request: web.Request) -> web.Response:
        """Exchanges the OHLCV store holds trades for."""
        names = await store.list_exchanges(request.app[DB])
        return json_response({"success": True, "count": len(names), "exchanges": names})

    async def symbols(self, request: web.Request) -> web.Response:
        """Symbols the OHLCV store holds for one exchange (404 for an unknown exchange)."""
        exchange = request.match_info["exchange"].strip().lower()
        names = await store.list_symbols(request.app[DB], exchange)
        if not names:
            raise NotFound(f"no OHLCV data for exchange {exchange!r}", code="exchange_not_found")
        return json_response({"success": True, "exchange": exchange, "count": len(names),
                              "symbols": names})

    async def _candles(self, request: web.Request, tf_name: str,
                       query: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
        exchange, symbol = _names(request)
        sid = await _symbol_id(request, exchange, symbol)
        rows = await store.candles(request.app[DB], sid, TIMEFRAMES[tf_name],
                                   query["start_time"], query["end_time"], query["limit"])
        return exchange, symbol, rows

    async def candles(self, request: web.Request) -> web.Response:
        """Candles of one timeframe, oldest first, aggregated in SQL from the 1m bars."""
        tf_name = check_timeframe(request.match_info["timeframe"])
        query = _range.load(dict(request.query))
        exchange, symbol, rows = await self._candles(request, tf_name, query)
        return json_response({"success": True, "exchange": exchange, "symbol": symbol,
                              "timeframe": tf_name, "count": len(rows), "candles": rows})

    async def timeseries(self, request: web.Request) -> web.Response:
        """fullon's timeseries shape: candles of ``?timeframe=`` under the key ``ohlcv``."""
        query = _timeseries.load(dict(request.query))
        exchange, symbol, rows = await self._candles(request, query["timeframe"], query)
        return json_response({
            "success": True, "exchange": exchange, "symbol": symbol,
            "timeframe": query["timeframe"], "start_time": query["start_time"],
            "end_time": query["end_time"], "count": len(rows), "ohlcv": rows,
        })

    async def trades(self, request: web.Request) -> web.Response:
        """Stored market trades, oldest first."""
        query = _range.load(dict(request.query))
        exchange, symbol = _names(request)
        sid = await _symbol_id(request, exchange, symbol)
        rows = await store.trades(request.app[DB], sid, query["start_time"],
                                  query["end_time"], query["limit"])
        return json_response({"success": True, "exchange": exchange, "symbol": symbol,
                              "count": len(rows), "trades": rows})

    @requires("ingest")
    async def ingest(self, request: web.Request) -> web.Response:
        """Store a batch of market trades (idempotent on trade_id; one bad row fails all)."""
        exchange, symbol = check_names(request.match_info["exchange"],
                                       request.match_info["symbol"])
        batch = load_trade_batch(await read_json(request))
        result = await request.app[OHLCV_LOADER].load(exchange, symbol, batch)
        return json_response({"inserted": result.inserted, "duplicates": result.duplicates})
