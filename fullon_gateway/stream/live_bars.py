"""Ingested trades reach the live ``ohlcv`` stream: each new or changed 1m bar is
published (snapshot + history + channel) as soon as its load has committed."""

from __future__ import annotations

from fullon_gateway.ohlcv.loader import Bar, BarsListener
from fullon_gateway.stream.publish import Publisher

# A load can touch thousands of minutes (a backfill); the live stream carries the
# newest ones only. Subscribers get older bars from the REST candles endpoint.
LIVE_BARS_PER_LOAD = 60

def bars_to_stream(publisher: Publisher) -> BarsListener:
    """An OhlcvLoader listener that publishes the newest bars of each load."""

    async def on_bars(exchange: str, symbol: str, bars: list[Bar]) -> None:
        # In time order, so seq order matches bar order.
        for bar in bars[-LIVE_BARS_PER_LOAD:]:
            ts = bar["timestamp"]
            millis = int(ts.timestamp() * 1000) if hasattr(ts, "timestamp") else int(ts)
            await publisher.ohlcv(exchange, symbol, "1m", {**bar, "timestamp": millis})

    return on_bars
