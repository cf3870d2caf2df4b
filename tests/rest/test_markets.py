"""GET /api/v1/markets: every exchange and symbol with a ticker snapshot."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

from fullon_gateway.handlers.markets import MarketsHandler
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


def _markets_handler(client: Any) -> MarketsHandler:
    """The app's MarketsHandler instance (the bound method behind the route)."""
    for route in client.app.router.routes():
        if route.resource is not None and route.resource.canonical == MarketsHandler.path:
            handler = route.handler.__self__
            assert isinstance(handler, MarketsHandler)
            return handler
    raise AssertionError("no markets route")


async def _exchanges(client: Any, user: Any) -> list[str]:
    resp = await client.get("/api/v1/markets", headers=user.headers)
    assert resp.status == 200
    return [i["exchange"] for i in (await resp.json())["items"]]


async def test_markets_are_read_from_redis_once_per_ttl(app_client: Any, settings: Any,
                                                        make_account: Any) -> None:
    """Within ``markets_cache_ttl`` every call gets the answer read first: an exchange
    that starts streaming meanwhile is not listed yet, and Redis was scanned once."""
    client = await app_client(dataclasses.replace(settings, markets_cache_ttl=60.0))
    handler = _markets_handler(client)
    pub = publisher(client)
    await pub.ticker("kraken", "BTC/USD", {"price": 2.0, "time": time.time()})
    user = await make_account()
    assert await _exchanges(client, user) == ["kraken"]
    await pub.ticker("binance", "BTC/USDT", {"price": 3.0, "time": time.time()})
    assert await _exchanges(client, user) == ["kraken"]
    assert handler.scans == 1


async def test_markets_are_read_again_after_the_ttl(app_client: Any, settings: Any,
                                                    make_account: Any) -> None:
    """Past the TTL (0 here: every call) the next call scans again and lists an exchange
    that started streaming since."""
    client = await app_client(dataclasses.replace(settings, markets_cache_ttl=0.0))
    handler = _markets_handler(client)
    pub = publisher(client)
    await pub.ticker("kraken", "BTC/USD", {"price": 2.0, "time": time.time()})
    user = await make_account()
    assert await _exchanges(client, user) == ["kraken"]
    await pub.ticker("binance", "BTC/USDT", {"price": 3.0, "time": time.time()})
    assert await _exchanges(client, user) == ["binance", "kraken"]
    assert handler.scans == 2


async def test_concurrent_markets_calls_share_one_scan(app_client: Any, settings: Any,
                                                       make_account: Any) -> None:
    """Callers that arrive while Redis is being scanned wait for that scan instead of
    starting their own: 20 concurrent calls, over a keyspace large enough that the scan
    takes many round trips, make one scan, and some calls provably joined it."""
    client = await app_client(dataclasses.replace(settings, markets_cache_ttl=60.0))
    handler = _markets_handler(client)
    prefix = client.app[SETTINGS].redis_prefix
    redis = client.app[REDIS]
    filler = [f"{prefix}filler:{i}" for i in range(20_000)]  # 40 SCAN round trips
    async with redis.pipeline(transaction=False) as pipe:
        for key in filler:
            pipe.set(key, "x")
        pipe.hset(prefix + "tickers:kraken", "BTC/USD", json.dumps({"price": 1.0}))
        await pipe.execute()
    try:
        user = await make_account()
        replies = await asyncio.gather(*(
            client.get("/api/v1/markets", headers=user.headers) for _ in range(20)))
        assert [r.status for r in replies] == [200] * 20
        for r in replies:
            assert (await r.json())["items"] == [{"exchange": "kraken", "symbols": ["BTC/USD"]}]
        assert handler.scans == 1
        assert handler.joined >= 1  # the race happened: a call arrived mid-scan and waited
    finally:
        await redis.delete(*filler)
