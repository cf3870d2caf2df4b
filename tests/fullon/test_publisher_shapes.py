"""The gateway's Publisher writes fullon's shapes and its digests: fullon's readers keep
working, and the fullon watcher never sequences a published change a second time."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from fullon_gateway.stream.fullon import sources
from fullon_gateway.stream.fullon.sequencer import Sequencer
from fullon_gateway.stream.publish import Publisher


async def test_published_changes_are_not_sequenced_again(fredis: aioredis.Redis) -> None:
    """After Publisher writes (ticker, order, balances, positions, bot, process), the
    sequencer step over the same keys finds nothing new: one seq per change."""
    pub = Publisher(fredis)
    await pub.ticker("kraken", "BTC/USD", {"price": 1.0})
    await pub.order(3, {"order_id": "a", "status": "open"})
    await pub.balances(3, {"USD": {"total": 1.0, "free": 1.0, "used": 0.0}})
    await pub.positions(3, [{"symbol": "BTC/USD", "size": 0.5, "price": 10.0}])
    await pub.bot_status(4, {"0": {"status": "running"}})
    await pub.process("tick", "t1", "running", "ok")
    before = int(await fredis.get("gateway:seq"))
    jobs = [j for j in (sources.ticker_job("kraken", "BTC/USD"),
                        *(sources.job_for(k) for k in (
                            "order_status:3", "accounts", "account_positions", "bot_status",
                            "process:data:t1", "process:active:tick")))
            if j is not None]
    assert await Sequencer(fredis).run(jobs) == 0
    assert int(await fredis.get("gateway:seq")) == before


async def test_publisher_writes_fullon_shapes(fredis: aioredis.Redis) -> None:
    """positions keyed by symbol with a root timestamp (what fullon's get_position
    reads), balances with date, ProcessCache's layout; tickers can be pipelined."""
    pub = Publisher(fredis)
    await pub.positions(3, [{"symbol": "BTC/USD", "size": 0.5, "price": 10.0}])
    stored = json.loads(await fredis.hget("account_positions", "3"))
    assert stored["BTC/USD"]["volume"] == 0.5 and isinstance(stored["timestamp"], str)
    await pub.balances(3, {"USD": {"total": 1.0}})
    assert "date" in json.loads(await fredis.hget("accounts", "3"))
    await pub.process("tick", "t1", "running", "ok", component="kraken:BTC/USD")
    record = json.loads(await fredis.get("process:data:t1"))
    assert record["component"] == "kraken:BTC/USD" and record["status"] == "running"
    assert await fredis.hget("process:components", "kraken:BTC/USD") == b"t1"
    assert 0 < await fredis.ttl("process:data:t1") <= 86400
    pipe = fredis.pipeline(transaction=False)
    assert await pub.ticker("kraken", "ETH/USD", {"price": 2.0}, pipeline=pipe) == 0
    assert await fredis.hget("tickers:kraken", "ETH/USD") is None  # queued, not sent
    await pipe.execute()
    assert json.loads(await fredis.hget("tickers:kraken", "ETH/USD"))["price"] == 2.0
