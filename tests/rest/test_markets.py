"""GET /api/v1/markets: every exchange and symbol with a ticker snapshot."""

from __future__ import annotations

import json
import time
from typing import Any

from fullon_gateway.keys import REDIS, SETTINGS
from tests.stream.support import publisher


async def test_markets_lists_streamed_exchanges_and_symbols(client: Any, make_account: Any) -> None:
    """Tickers from the Publisher and from a plain fullon_cache HSET are both listed,
    sorted; keys that are not ticker hashes or not valid exchange names are left out."""
    pub = publisher(client)
    await pub.ticker("kraken", "ETH/USD", {"price": 1.0, "time": time.time()})
    await pub.ticker("kraken", "BTC/USD", {"price": 2.0, "time": time.time()})
    prefix = client.app[SETTINGS].redis_prefix
    redis = client.app[REDIS]
    await redis.hset(prefix + "tickers:binance", "BTC/USDT",
                     json.dumps({"symbol": "BTC/USDT", "price": 3.0}))
    await redis.set(prefix + "tickers:notahash", "x")  # wrong type: skipped
    await redis.hset(prefix + "tickers:bad name", "X/Y", "{}")  # not an exchange name
    user = await make_account()
    resp = await client.get("/api/v1/markets", headers=user.headers)
    assert resp.status == 200
    assert await resp.json() == {"items": [
        {"exchange": "binance", "symbols": ["BTC/USDT"]},
        {"exchange": "kraken", "symbols": ["BTC/USD", "ETH/USD"]},
    ], "next_cursor": None}


async def test_markets_needs_a_login(client: Any) -> None:
    """Without credentials the answer is 401 with the error body."""
    resp = await client.get("/api/v1/markets")
    assert resp.status == 401
    assert (await resp.json())["code"]


async def test_markets_empty_when_nothing_streams(client: Any, make_account: Any) -> None:
    """No ticker snapshots: an empty list, not an error."""
    user = await make_account()
    resp = await client.get("/api/v1/markets", headers=user.headers)
    assert resp.status == 200
    assert (await resp.json())["items"] == []
