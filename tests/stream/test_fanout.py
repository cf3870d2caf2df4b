"""The fan-out: the one layer that counts who wants a channel (one hub listener per
channel, shared confirmations, the last one out unlistens) and that indexes a route's
subscriptions by the change keys they want. Real hub, real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from fullon_gateway.embedded import RedisProcess
from fullon_gateway.metrics import Metrics
from fullon_gateway.stream.counters import StreamCounters
from fullon_gateway.stream.fanout import Fanout
from fullon_gateway.stream.hub import Channel, Hub
from fullon_gateway.stream.kinds import Source, gateway_change
from tests.support import eventually


class Target:
    """The part of a kinds.Target the fan-out reads."""

    def __init__(self, channels: tuple[Channel, ...], keys: frozenset[str] | None = None):
        self.sources = tuple(Source(c, gateway_change) for c in channels)
        self.keys = keys


class Sub:
    """A subscription that records what the route hands it."""

    stream = "orders"

    def __init__(self, *channels: str, keys: frozenset[str] | None = None) -> None:
        self.target = Target(tuple(Channel(c) for c in channels), keys)
        self.got: list[Any] = []
        self.event = asyncio.Event()

    def deliver(self, change: Any) -> bool:
        self.got.append(change.data["n"])
        self.event.set()
        return True

    async def wait_for(self, count: int) -> list[Any]:
        async with asyncio.timeout(5):
            while len(self.got) < count:
                self.event.clear()
                await self.event.wait()
        return self.got


def change(n: int, key: str | None = None) -> bytes:
    """A publisher message (the envelope publish.py's script writes)."""
    return orjson.dumps({"seq": n, "prev": 0, "key": key, "ts": 0, "data": {"n": n}})


@pytest.fixture
async def fanout(settings):
    async with Hub(settings.redis_url, settings.redis_prefix) as hub:
        yield Fanout(hub, StreamCounters(Metrics()))


async def _numsub(redis_client, channel: str) -> int:
    [(_, count)] = await redis_client.pubsub_numsub(channel)
    return int(count)


async def test_subscriptions_share_one_listener_until_the_last_leaves(fanout, redis_client,
                                                                      settings):
    """Two subscriptions of a channel are one Redis subscription and one hub listener;
    it stays while one remains and goes when the last one leaves."""
    full = settings.redis_prefix + "orders:1"
    first, second = Sub("orders:1"), Sub("orders:1")
    await fanout.attach(first)
    await fanout.attach(second)
    assert fanout.subscribers(Channel("orders:1")) == 2 and fanout.channel_count == 1
    assert fanout.hub.channel_count == 1 and await _numsub(redis_client, full) == 1
    assert await redis_client.publish(full, change(1)) == 1
    assert await first.wait_for(1) == [1] and await second.wait_for(1) == [1]

    await fanout.detach(first)
    assert fanout.hub.listening(Channel("orders:1"))
    await redis_client.publish(full, change(2))
    assert await second.wait_for(2) == [1, 2]
    assert first.got == [1]

    await fanout.detach(second)
    assert fanout.channel_count == 0 and not fanout.hub.listening(Channel("orders:1"))

    async def gone() -> bool:
        return await _numsub(redis_client, full) == 0

    await eventually(gone, within=15, what="the Redis subscription dropped")


async def test_concurrent_first_subscriptions_share_one_confirmation(fanout, redis_client,
                                                                     settings):
    """Five subscriptions of a new channel attached at once: one listen, and every one of
    them returns only once Redis confirmed it (a publish right then reaches all five)."""
    subs = [Sub("bots:3") for _ in range(5)]
    await asyncio.gather(*(fanout.attach(s) for s in subs))
    assert fanout.subscribers(Channel("bots:3")) == 5
    assert await redis_client.publish(settings.redis_prefix + "bots:3", change(7)) == 1
    for sub in subs:
        assert await sub.wait_for(1) == [7]


async def test_a_route_visits_only_the_subscriptions_that_want_the_key(fanout, redis_client,
                                                                       settings):
    """Inside one channel, a change goes to the subscriptions indexed under its key and
    to those that want every key, and to no other."""
    everyone = Sub("tickers:x")
    btc = Sub("tickers:x", keys=frozenset({"BTC"}))
    both = Sub("tickers:x", keys=frozenset({"BTC", "ETH"}))
    for sub in (everyone, btc, both):
        await fanout.attach(sub)
    full = settings.redis_prefix + "tickers:x"
    await redis_client.publish(full, change(1, "ETH"))
    await redis_client.publish(full, change(2, "BTC"))
    await redis_client.publish(full, change(3, "SOL"))
    assert await everyone.wait_for(3) == [1, 2, 3]
    assert btc.got == [2]
    assert both.got == [1, 2]
    await fanout.detach(both)
    await redis_client.publish(full, change(4, "ETH"))
    assert await everyone.wait_for(4) == [1, 2, 3, 4]
    assert both.got == [1, 2] and btc.got == [2]


@pytest.fixture
def redis_process(tmp_path):
    proc = RedisProcess(tmp_path / "redis")
    proc.start()
    yield proc
    proc.stop()


async def test_subscriptions_while_redis_is_down_time_out_cleanly(redis_process):
    """With Redis down, attach fails after the fan-out's timeout and leaves nothing
    behind, also when several subscriptions wait for the same new channel."""
    async with Hub(redis_process.url, "p:") as hub:
        fanout = Fanout(hub, StreamCounters(Metrics()), confirm_timeout=0.3)
        await eventually(lambda: hub.connected, within=15)
        redis_process.stop()
        await eventually(lambda: not hub.connected, within=15)
        results = await asyncio.gather(fanout.attach(Sub("orders:9")),
                                       fanout.attach(Sub("orders:9")), return_exceptions=True)
        assert all(isinstance(r, TimeoutError) for r in results), results
        assert all("did not confirm a subscription to 'orders:9'" in str(r) for r in results)
        assert fanout.channel_count == 0
        await eventually(lambda: not hub.listening(Channel("orders:9")),
                         what="the hub dropping the abandoned listen")


async def test_waiting_subscription_survives_the_first_one_giving_up(redis_process):
    """Redis down: the first subscription of a channel gives up, a second one that waits
    longer stays and is confirmed by the reconnect's resubscription."""
    async with Hub(redis_process.url, "p:") as hub:
        fanout = Fanout(hub, StreamCounters(Metrics()), confirm_timeout=20)
        await eventually(lambda: hub.connected, within=15)
        redis_process.stop()
        await eventually(lambda: not hub.connected, within=15)
        impatient, patient = Sub("orders:5"), Sub("orders:5")
        first = asyncio.create_task(fanout.attach(impatient))
        second = asyncio.create_task(fanout.attach(patient))
        await eventually(lambda: fanout.subscribers(Channel("orders:5")) == 2)
        first.cancel()  # the first subscriber's socket went away
        with pytest.raises(asyncio.CancelledError):
            await first
        assert fanout.subscribers(Channel("orders:5")) == 1 and not second.done()
        assert hub.listening(Channel("orders:5"))
        redis_process.start()
        async with asyncio.timeout(20):
            await second
        publisher = aioredis.Redis.from_url(redis_process.url)
        try:
            assert await publisher.publish("p:orders:5", change(9)) == 1
            assert await patient.wait_for(1) == [9]
            assert impatient.got == []
        finally:
            await publisher.aclose()
