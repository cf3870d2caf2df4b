"""The Redis pub/sub hub (transport only): confirmed listens on channels and patterns,
delivery without the prefix, unlisten, and reconnection after a real Redis restart.
Counting subscribers and sharing confirmations is the fan-out's (test_fanout.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as aioredis

from fullon_gateway.embedded import RedisProcess
from fullon_gateway.stream.hub import Channel, Hub
from tests.support import eventually


class Inbox:
    """A hub listener that records what it got and lets a test await the next one."""

    def __init__(self) -> None:
        self.got: list[tuple[str, bytes]] = []
        self._read = 0
        self._event = asyncio.Event()

    def __call__(self, channel: str, data: bytes) -> None:
        self.got.append((channel, data))
        self._event.set()

    async def next(self, within: float = 5.0) -> tuple[str, bytes]:
        """The next message not yet returned, waiting for it if needed."""
        async with asyncio.timeout(within):
            while len(self.got) == self._read:
                self._event.clear()
                await self._event.wait()
        self._read += 1
        return self.got[self._read - 1]


async def _numsub(redis: aioredis.Redis, channel: str) -> int:
    [(_, count)] = await redis.pubsub_numsub(channel)
    return int(count)


@pytest.fixture
async def hub(settings):
    """A started hub on this worker's Redis with this worker's prefix."""
    hub = Hub(settings.redis_url, settings.redis_prefix)
    await hub.start()
    yield hub
    await hub.stop()


@pytest.fixture
def redis_process(tmp_path):
    """A redis-server of our own, so a test can stop and restart it for real."""
    proc = RedisProcess(tmp_path / "redis")
    proc.start()
    yield proc
    proc.stop()


async def test_listener_gets_messages_without_the_prefix(hub, redis_client, settings):
    """A message published on prefix+channel reaches the listener as (channel, bytes),
    and the hub counts it."""
    inbox = Inbox()
    await hub.listen(Channel("tickers:kraken"), inbox)
    before = hub.messages
    await redis_client.publish(settings.redis_prefix + "tickers:kraken", b'{"p": 1}')
    assert await inbox.next() == ("tickers:kraken", b'{"p": 1}')
    assert hub.messages == before + 1 and hub.connected


async def test_pattern_listener_gets_each_matching_channel(hub, redis_client, settings):
    """A pattern listener gets every matching channel's messages under the channel's own
    name; the prefix is matched literally (a glob character in it matches only itself)."""
    inbox = Inbox()
    await hub.listen(Channel("ticker_updates:kraken:*", pattern=True), inbox)
    p = settings.redis_prefix
    assert await redis_client.publish(p + "ticker_updates:kraken:BTC/USD", b"1") == 1
    assert await redis_client.publish(p + "ticker_updates:bybit:BTC/USD", b"2") == 0
    assert await inbox.next() == ("ticker_updates:kraken:BTC/USD", b"1")
    await hub.unlisten(Channel("ticker_updates:kraken:*", pattern=True))
    assert not hub.listening(Channel("ticker_updates:kraken:*", pattern=True))


async def test_listen_returns_after_redis_confirmed(hub, redis_client, settings):
    """As soon as listen() returns, Redis counts the subscriber: a publish made right
    then is received (publish reports one receiver) and delivered."""
    for i in range(20):
        inbox = Inbox()
        channel = f"confirm:{i}"
        await hub.listen(Channel(channel), inbox)
        receivers = await redis_client.publish(settings.redis_prefix + channel, str(i))
        assert receivers == 1, channel
        assert await inbox.next() == (channel, str(i).encode())


async def test_unlisten_unsubscribes_in_redis(hub, redis_client, settings):
    """unlisten drops the listener and the Redis subscription; listening again works at
    once."""
    full = settings.redis_prefix + "orders:1"
    inbox = Inbox()
    base = hub.channel_count
    await hub.listen(Channel("orders:1"), inbox)
    assert hub.channel_count == base + 1 and await _numsub(redis_client, full) == 1
    await hub.unlisten(Channel("orders:1"))
    assert hub.channel_count == base and not hub.listening(Channel("orders:1"))

    async def unsubscribed() -> bool:
        return await _numsub(redis_client, full) == 0

    await eventually(unsubscribed, within=15, what="Redis dropping the subscription")
    for round_ in range(3):
        await hub.listen(Channel("bots:7"), inbox)
        assert await redis_client.publish(settings.redis_prefix + "bots:7", str(round_)) == 1
        assert await inbox.next() == ("bots:7", str(round_).encode())
        await hub.unlisten(Channel("bots:7"))
    assert inbox.got == [("bots:7", str(i).encode()) for i in range(3)]


async def test_other_prefixes_and_channels_are_not_delivered(hub, redis_client, settings):
    """Publishes on the bare channel name (another environment) or another channel do
    not reach the listener."""
    inbox = Inbox()
    await hub.listen(Channel("accounts"), inbox)
    await redis_client.publish("accounts", b"other-env")
    await redis_client.publish(settings.redis_prefix + "accountsX", b"other-channel")
    await redis_client.publish(settings.redis_prefix + "accounts", b"mine")
    assert await inbox.next() == ("accounts", b"mine")
    assert inbox.got == [("accounts", b"mine")]


async def test_a_failing_listener_does_not_stop_delivery(hub, redis_client, settings, caplog):
    """A listener that raises is logged; other channels and later messages still
    arrive."""
    def broken(channel: str, data: bytes) -> None:
        raise ValueError("listener bug")

    inbox = Inbox()
    await hub.listen(Channel("process"), broken)
    await hub.listen(Channel("process:ok"), inbox)
    with caplog.at_level(logging.ERROR, logger="fullon_gateway.stream.hub"):
        for payload in (b"1", b"2"):
            await redis_client.publish(settings.redis_prefix + "process", payload)
            await redis_client.publish(settings.redis_prefix + "process:ok", payload)
            assert (await inbox.next())[1] == payload
    assert sum("listener failed" in r.getMessage() for r in caplog.records) == 2
    assert hub.connected


async def test_unlistening_something_unknown_is_harmless(hub):
    """Unlistening a channel the hub does not have changes nothing."""
    inbox = Inbox()
    await hub.unlisten(Channel("never"))
    await hub.listen(Channel("known"), inbox)
    await hub.unlisten(Channel("never", pattern=True))
    assert hub.listening(Channel("known"))


async def test_hub_reconnects_after_a_redis_restart(redis_process):
    """Redis stopped and started again on the same port: the hub notices, reconnects,
    resubscribes every channel, and runs each reconnect callback once."""
    hub = Hub(redis_process.url, "p:")
    calls: list[str] = []
    reconnected = asyncio.Event()

    async def first_callback() -> None:
        calls.append("first")

    async def second_callback() -> None:
        calls.append("second")
        reconnected.set()

    hub.on_reconnect(first_callback)
    hub.on_reconnect(second_callback)
    publisher = aioredis.Redis.from_url(redis_process.url)
    try:
        async with hub:
            inbox = Inbox()
            await hub.listen(Channel("tickers:a"), inbox)
            await hub.listen(Channel("tickers:*", pattern=True), inbox)
            assert await publisher.publish("p:tickers:a", b"before") == 2
            assert sorted([await inbox.next(), await inbox.next()]) == [
                ("tickers:a", b"before")] * 2

            redis_process.stop()
            await eventually(lambda: not hub.connected, within=15)
            redis_process.start()
            async with asyncio.timeout(20):
                await reconnected.wait()
            assert hub.connected and hub.reconnects == 1
            assert sorted(calls) == ["first", "second"]

            await publisher.aclose()
            publisher = aioredis.Redis.from_url(redis_process.url)
            assert await publisher.publish("p:tickers:a", b"after") == 2  # both back
            assert await publisher.publish("p:tickers:b", b"after") == 1
            got = sorted([await inbox.next() for _ in range(3)])
            assert got == [("tickers:a", b"after")] * 2 + [("tickers:b", b"after")]
        assert not hub.connected
    finally:
        await publisher.aclose()


async def test_listen_while_redis_is_down_is_bounded_by_the_caller(redis_process):
    """With Redis down, listen waits; the caller's timeout ends it and leaves no listener
    behind."""
    hub = Hub(redis_process.url, "p:")
    async with hub:
        await eventually(lambda: hub.connected, within=15)
        redis_process.stop()
        await eventually(lambda: not hub.connected, within=15)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await hub.listen(Channel("orders:9"), Inbox())
        assert not hub.listening(Channel("orders:9")) and hub.channel_count == 0


async def test_listen_waits_for_redis_to_come_back(redis_process):
    """A listen issued while Redis is down completes once it is back, confirmed, and
    delivers."""
    hub = Hub(redis_process.url, "p:")
    publisher = None
    try:
        async with hub:
            await eventually(lambda: hub.connected, within=15)
            redis_process.stop()
            await eventually(lambda: not hub.connected, within=15)
            inbox = Inbox()
            pending = asyncio.create_task(hub.listen(Channel("bots:1"), inbox))
            await eventually(lambda: hub.listening(Channel("bots:1")))
            assert not pending.done()  # registered, and no Redis to confirm it
            redis_process.start()
            async with asyncio.timeout(20):
                await pending
            publisher = aioredis.Redis.from_url(redis_process.url)
            assert await publisher.publish("p:bots:1", b"x") == 1
            assert await inbox.next() == ("bots:1", b"x")
    finally:
        if publisher is not None:
            await publisher.aclose()


async def test_unlisten_while_down_is_not_resubscribed(redis_process):
    """A channel unlistened while Redis was down is not subscribed again after the
    reconnect."""
    hub = Hub(redis_process.url, "p:")
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    hub.on_reconnect(on_reconnect)
    publisher = None
    try:
        async with hub:
            inbox = Inbox()
            await hub.listen(Channel("gone"), inbox)
            await hub.listen(Channel("kept"), inbox)
            redis_process.stop()
            await eventually(lambda: not hub.connected, within=15)
            await hub.unlisten(Channel("gone"))
            redis_process.start()
            async with asyncio.timeout(20):
                await reconnected.wait()
            publisher = aioredis.Redis.from_url(redis_process.url)
            assert await _numsub(publisher, "p:gone") == 0
            assert await _numsub(publisher, "p:kept") == 1
    finally:
        if publisher is not None:
            await publisher.aclose()


async def test_stop_before_start_and_twice_is_safe(settings):
    """stop() on a hub that never started, or twice, does not raise."""
    hub = Hub(settings.redis_url, settings.redis_prefix)
    await hub.stop()
    await hub.start()
    await hub.stop()
    await hub.stop()
    assert not hub.connected


async def test_silent_redis_is_detected_and_recovered(redis_process):
    """A Redis that stops answering without closing the socket (SIGSTOP) is given up on
    after two unanswered pings; once it answers again the hub reconnects and delivers."""
    import os
    import signal

    hub = Hub(redis_process.url, "p:", idle_ping=0.2)  # seconds idle before a ping
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    hub.on_reconnect(on_reconnect)
    publisher = None
    pid = redis_process.process.pid
    try:
        async with hub:
            inbox = Inbox()
            await hub.listen(Channel("quiet"), inbox)
            # Three idle pings without a reconnect: each answer reset the silence count
            # (a third unanswered one would have dropped the connection).
            await eventually(lambda: hub.pings >= 3, within=10)
            assert hub.connected and hub.reconnects == 0
            os.kill(pid, signal.SIGSTOP)
            try:
                await eventually(lambda: not hub.connected, within=10)
            finally:
                os.kill(pid, signal.SIGCONT)
            async with asyncio.timeout(20):
                await reconnected.wait()
            publisher = aioredis.Redis.from_url(redis_process.url)
            assert await publisher.publish("p:quiet", b"back") == 1
            assert await inbox.next() == ("quiet", b"back")
    finally:
        if publisher is not None:
            await publisher.aclose()
