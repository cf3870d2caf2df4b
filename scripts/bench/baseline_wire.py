"""What both baselines share: the wire subset they speak and where messages come from.

A client sends ``{"action": "subscribe", "request_id", "params": {"stream", "exchange",
"symbols": [S]}}`` (tickers) or ``{... "stream": "trades", "exchange", "symbol"}``.

Source ``contract`` (what fullon_cache ``set_ticker`` does, docs/contract.md section 8): a Tick
JSON on ``{prefix}ticker_updates:{exchange}:{symbol}``, one channel per symbol.
Source ``gateway`` (``fullon_gateway.publish``): an envelope ``{"seq", "prev", "stream",
"unit", "key", "ts", "data"}`` on ``{prefix}stream:tickers:{exchange}`` (one channel per
exchange; ``key`` is the symbol) or ``{prefix}stream:trades:{exchange}:{symbol}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


class BadRequest(Exception):
    pass


@dataclass(frozen=True)
class Wanted:
    stream: str
    exchange: str
    symbol: str
    channel: str
    key: str | None  # only messages with this envelope key (None: every message)
    stream_key: str
    source: str

    def decode(self, data: bytes) -> tuple[str | None, Any, dict[str, Any]]:
        """(key, seq, result) of one published message."""
        if self.source == "contract":
            tick = orjson.loads(data)
            tick["exchange"] = self.exchange
            tick["symbol"] = self.symbol
            return self.symbol, None, tick
        msg = orjson.loads(data)
        return msg.get("key"), msg.get("seq"), msg["data"]


def wanted(params: dict[str, Any], prefix: str, source: str) -> Wanted:
    stream = params.get("stream", "tickers")
    exchange = params.get("exchange")
    if stream == "tickers":
        symbol = (params.get("symbols") or [params.get("symbol")])[0]
    elif stream == "trades" and source == "gateway":
        symbol = params.get("symbol")
    else:
        raise BadRequest(f"{stream} is not served from source {source}")
    if not isinstance(exchange, str) or not isinstance(symbol, str):
        raise BadRequest("exchange and one symbol are required")
    if stream == "trades":
        channel, key = f"{prefix}stream:trades:{exchange}:{symbol}", None
    elif source == "contract":
        channel, key = f"{prefix}ticker_updates:{exchange}:{symbol}", None
    else:
        channel, key = f"{prefix}stream:tickers:{exchange}", symbol
    return Wanted(stream, exchange, symbol, channel, key, f"{stream}:{exchange}:{symbol}",
                  source)


def frame(w: Wanted, request_id: Any, seq: Any, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"action": f"{w.stream}_update", "request_id": request_id,
                         "stream_key": w.stream_key, "seq": seq, "result": result})


def ack(w: Wanted, request_id: Any) -> bytes:
    return orjson.dumps({"request_id": request_id, "action": "subscribe", "success": True,
                         "result": {"stream_key": w.stream_key}})


def refusal(request_id: Any, action: Any, why: str) -> bytes:
    return orjson.dumps({"request_id": request_id, "action": action, "success": False,
                         "error_code": "INVALID_PARAMS", "error": why})


async def snapshot(w: Wanted, redis: Any, prefix: str, request_id: Any) -> bytes:
    """Tickers: HGET of the fullon_cache hash (both sources write it); trades: empty."""
    if w.stream == "tickers":
        raw = await redis.hget(f"{prefix}tickers:{w.exchange}", w.symbol)
        result: dict[str, Any] = {"exchange": w.exchange,
                                  "tickers": [orjson.loads(raw)] if raw else []}
    else:
        result = {"exchange": w.exchange, "symbol": w.symbol, "trades": []}
    return orjson.dumps({"action": f"{w.stream}_update", "request_id": request_id,
                         "stream_key": w.stream_key, "seq": None, "snapshot": True,
                         "result": result})
