"""The sequencer step against a real Redis: each change once, however many run it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis

from fullon_gateway.stream.fullon import sources
from fullon_gateway.stream.fullon.decode import decode_change
from fullon_gateway.stream.fullon.sequencer import Sequencer
from tests.fullon.writer import FullonWriter


async def history(r: aioredis.Redis, unit: str) -> list[dict[str, Any]]:
    return [json.loads(fields[b"m"]) for _id, fields in await r.xrange(f"history:{unit}")]


async def test_two_sequencers_sequence_a_ticker_once(fredis: aioredis.Redis,
                                                     writer: FullonWriter) -> None:
    """Two processes' steps for the same write: the first sequences it, the second finds
    nothing new; history holds one entry whose raw value is fullon's text."""
    a, b = Sequencer(fredis), Sequencer(fredis)
    await writer.set_ticker("kraken", "BTC/USD", 100.0)
    job = sources.ticker_job("kraken", "BTC/USD")
    assert await a.run([job]) == 1
    assert await b.run([job]) == 0
    entries = await history(fredis, "tickers:kraken")
    assert len(entries) == 1
    stored = await fredis.hget("tickers:kraken", "BTC/USD")
    assert entries[0]["raw"] == stored.decode()
    assert entries[0]["seq"] == int(await fredis.get("gateway:seq"))


async def test_concurrent_steps_sequence_every_value_exactly_once(
        fredis: aioredis.Redis, writer: FullonWriter) -> None:
    """Two sequencers stepping the same keys concurrently, round after round: every
    value is sequenced exactly once (by one of them), never twice, in seq order."""
    a, b = Sequencer(fredis), Sequencer(fredis)
    symbols = [f"S{i}/USD" for i in range(50)]
    jobs = [sources.ticker_job("binance", s) for s in symbols]

    got_a = got_b = 0
    for rnd in range(5):
        for s in symbols:
            await writer.set_ticker("binance", s, 1000.0 + rnd)
        # One job per call, a walking the symbols forward and b backward, their calls
        # interleaved: they meet somewhere in the middle, inside Redis.
        calls = []
        for fwd, back in zip(jobs, jobs[::-1], strict=True):
            calls += [a.run([fwd]), b.run([back])]
        counts = await asyncio.gather(*calls)
        got_a, got_b = got_a + sum(counts[0::2]), got_b + sum(counts[1::2])
    entries = await history(fredis, "tickers:binance")
    assert got_a + got_b == len(entries) == 5 * len(symbols)
    assert got_a > 0 and got_b > 0, "both sequencers did some of the work (the race ran)"
    seen = [(e["field"], e["raw"]) for e in entries]
    assert len(seen) == len(set(seen)), "no value sequenced twice"
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(set(seqs))
    last = {e["field"]: e["raw"] for e in entries}
    for s in symbols:
        assert last[s] == (await fredis.hget("tickers:binance", s)).decode()


async def test_removed_fields_and_an_expired_hash_are_changes(fredis: aioredis.Redis,
                                                               writer: FullonWriter) -> None:
    """HDEL of one order, then the whole hash gone (fullon's cancel TTL): each removed
    order is a 'del' change, in seq order, and the digests are cleaned up."""
    seq = Sequencer(fredis)
    await writer.save_order_data(7, {"order_id": "a", "status": "open"})
    await writer.save_order_data(7, {"order_id": "b", "status": "open"})
    job = sources.job_for("order_status:7")
    assert job is not None and job.unit == "orders:7"
    assert await seq.run([job]) == 2
    await fredis.hdel("order_status:7", "a")
    assert await seq.run([job]) == 1
    await fredis.delete("order_status:7")
    assert await seq.run([job]) == 1
    entries = await history(fredis, "orders:7")
    assert [(e["field"], e["op"]) for e in entries] == [
        ("a", "set"), ("b", "set"), ("a", "del"), ("b", "del")]
    assert not await fredis.exists("gateway:digest:order_status:7")
    gone = decode_change(entries[-1])
    assert gone.data == {"ex_id": 7, "order_id": "b", "deleted": True}


async def test_lists_sequence_appends_only_and_never_consume(fredis: aioredis.Redis,
                                                             writer: FullonWriter) -> None:
    """Appended trades are changes; a drain by fullon's consumer is not; pushes after a
    drain are found again; the gateway's step leaves the list's length unchanged."""
    seq = Sequencer(fredis)
    job = sources.job_for("trades:kraken:BTCUSD")
    assert job is not None
    for i in range(3):
        await writer.push_trade("kraken", {"trade_id": i, "symbol": "BTC/USD", "price": 1.0})
    assert await seq.run([job]) == 3
    assert await fredis.llen("trades:kraken:BTCUSD") == 3
    assert await seq.run([job]) == 0
    drained = await writer.get_trades("kraken", "BTC/USD")
    assert len(drained) == 3
    assert await seq.run([job]) == 0
    for i in range(3, 5):
        await writer.push_trade("kraken", {"trade_id": i, "symbol": "BTC/USD", "price": 2.0})
    assert await seq.run([job]) == 2
    entries = await history(fredis, "fullon:trades:kraken:BTCUSD")
    ids = [json.loads(e["raw"])["trade_id"] for e in entries]
    assert ids == [0, 1, 2, 3, 4]
    assert decode_change(entries[0]).data["symbol"] == "BTC/USD"


async def test_a_list_trimmed_at_the_head_yields_only_the_new_bars(
        fredis: aioredis.Redis) -> None:
    """LTRIM from the head plus RPUSH (fullon's 10,000-bar cap): only the pushed bars."""
    seq = Sequencer(fredis, list_window=50)
    job = sources.job_for("ohlcv:BTC/USD:1m")
    assert job is not None and job.unit == "fullon:ohlcv:BTC/USD:1m"
    bars = [json.dumps([i, 1, 2, 0.5, 1.5, 10]) for i in range(10)]
    await fredis.rpush("ohlcv:BTC/USD:1m", *bars)
    assert await seq.run([job]) == 10
    await fredis.ltrim("ohlcv:BTC/USD:1m", 4, -1)
    await fredis.rpush("ohlcv:BTC/USD:1m", json.dumps([10, 1, 2, 0.5, 1.5, 10]),
                       json.dumps([11, 1, 2, 0.5, 1.5, 10]))
    assert await seq.run([job]) == 2
    entries = await history(fredis, job.unit)
    assert [json.loads(e["raw"])[0] for e in entries[-2:]] == [10, 11]
    bar = decode_change(entries[-1])
    assert bar.stream == "ohlcv" and bar.key == "11"
    assert bar.data == {"symbol": "BTC/USD", "timeframe": "1m", "timestamp": 11, "open": 1,
                        "high": 2, "low": 0.5, "close": 1.5, "vol": 10}


async def test_first_rescan_records_state_then_new_keys_are_changes(
        fredis: aioredis.Redis, writer: FullonWriter) -> None:
    """Data already there before the gateway ever ran is state (no changes); once primed,
    a key seen for the first time is new and sequenced."""
    seq = Sequencer(fredis)
    await writer.update_bot(1, {"0": {"status": "running"}})
    job = sources.job_for("bot_status")
    assert job is not None
    assert await seq.run([job], rescan=True) == 0
    await seq.mark_primed()
    assert await seq.run([job], rescan=True) == 0
    await writer.update_bot(2, {"0": {"status": "starting"}})
    assert await seq.run([job], rescan=True) == 1
    entries = await history(fredis, "bots:2")
    assert decode_change(entries[0]).data["bot_id"] == 2


async def test_a_string_value_and_its_expiry(fredis: aioredis.Redis,
                                             writer: FullonWriter) -> None:
    """process:data:{id} (SETEX) is a process change; when it is gone, a removal."""
    seq = Sequencer(fredis)
    pid = await writer.register_process("tick", "kraken:BTC/USD")
    job = sources.job_for(f"process:data:{pid}")
    assert job is not None
    assert await seq.run([job]) == 1
    await fredis.delete(f"process:data:{pid}")
    assert await seq.run([job]) == 1
    first, gone = [decode_change(e) for e in await history(fredis, "process")]
    assert first.data["process_id"] == pid and first.data["status"] == "starting"
    assert gone.data == {"process_id": pid, "process_type": "tick", "deleted": True}
