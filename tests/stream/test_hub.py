"""The Redis fan-out hub: refcounted channels, confirmed subscriptions, delivery to
listeners, and reconnection after a real Redis restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

import pytest
import redis.asyncio as aioredis

from fullon_gateway.embedded import RedisProcess
from fullon_gateway.stream.hub import Hub
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
    """A message published on prefix+channel reaches the listener as (channel, bytes)."""
    inbox = Inbox()
    await hub.subscribe("tickers:kraken", inbox)
    await redis_client.publish(settings.redis_prefix + "tickers:kraken", b'{"p": 1}')
    assert await inbox.next() == ("tickers:kraken", b'{"p": 1}')
    assert hub.messages >= 1 and hub.connected


async def test_subscribe_returns_after_redis_confirmed(hub, redis_client, settings):
    """As soon as subscribe() returns, Redis counts the subscriber: a publish made right
    then is received (publish reports one receiver) and delivered."""
    for i in range(20):
        inbox = Inbox()
        channel = f"confirm:{i}"
        await hub.subscribe(channel, inbox)
        receivers = await redis_client.publish(settings.redis_prefix + channel, str(i))
        assert receivers == 1, channel
        assert await inbox.next() == (channel, str(i).encode())


async def test_channels_are_refcounted(hub, redis_client, settings):
    """Two listeners share one Redis subscription; it stays while one remains and goes
    when the last one leaves."""
    full = settings.redis_prefix + "orders:1"
    first, second = Inbox(), Inbox()
    base = hub.channel_count
    await hub.subscribe("orders:1", first)
    await hub.subscribe("orders:1", second)
    assert hub.listener_count("orders:1") == 2 and hub.channel_count == base + 1
    assert await _numsub(redis_client, full) == 1
    assert await redis_client.publish(full, b"a") == 1
    assert await first.next() == ("orders:1", b"a")
    assert await second.next() == ("orders:1", b"a")

    await hub.unsubscribe("orders:1", first)
    assert hub.listener_count("orders:1") == 1
    assert await _numsub(redis_client, full) == 1
    await redis_client.publish(full, b"b")
    assert await second.next() == ("orders:1", b"b")
    assert first.got == [("orders:1", b"a")]

    await hub.unsubscribe("orders:1", second)
    assert hub.listener_count("orders:1") == 0 and hub.channel_count == base
    await eventually(lambda: _is(_numsub(redis_client, full), 0), within=15)


async def _is(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_resubscribing_after_the_last_listener_left(hub, redis_client, settings):
    """A channel dropped by its last listener can be subscribed again at once."""
    inbox = Inbox()
    for round_ in range(3):
        await hub.subscribe("bots:7", inbox)
        assert await redis_client.publish(settings.redis_prefix + "bots:7", str(round_)) == 1
        assert await inbox.next() == ("bots:7", str(round_).encode())
        await hub.unsubscribe("bots:7", inbox)


async def test_concurrent_first_subscriptions_share_one_confirmation(hub, redis_client,
                                                                     settings):
    """Many listeners subscribing to a new channel at once all return confirmed."""
    inboxes = [Inbox() for _ in range(5)]
    await asyncio.gather(*(hub.subscribe("trades:x", inbox) for inbox in inboxes))
    assert await redis_client.publish(settings.redis_prefix + "trades:x", b"t") == 1
    for inbox in inboxes:
        assert await inbox.next() == ("trades:x", b"t")


async def test_other_prefixes_and_channels_are_not_delivered(hub, redis_client, settings):
    """Publishes on the bare channel name (another environment) or another channel do
    not reach the listener."""
    inbox = Inbox()
    await hub.subscribe("accounts", inbox)
    await redis_client.publish("accounts", b"other-env")
    await redis_client.publish(settings.redis_prefix + "accountsX", b"other-channel")
    await redis_client.publish(settings.redis_prefix + "accounts", b"mine")
    assert await inbox.next() == ("accounts", b"mine")
    assert inbox.got == [("accounts", b"mine")]


async def test_a_failing_listener_does_not_stop_delivery(hub, redis_client, settings, caplog):
    """A listener that raises is logged; the other listeners and later messages still
    arrive."""
    def broken(channel: str, data: bytes) -> None:
        raise ValueError("listener bug")

    inbox = Inbox()
    await hub.subscribe("process", broken)
    await hub.subscribe("process", inbox)
    with caplog.at_level(logging.ERROR, logger="fullon_gateway.stream.hub"):
        for payload in (b"1", b"2"):
            await redis_client.publish(settings.redis_prefix + "process", payload)
            assert (await inbox.next())[1] == payload
    assert any("listener failed" in r.getMessage() for r in caplog.records)
    assert hub.connected


async def test_unsubscribing_something_unknown_is_harmless(hub):
    """Unsubscribing a channel or listener the hub does not have changes nothing."""
    inbox = Inbox()
    await hub.unsubscribe("never", inbox)
    await hub.subscribe("known", inbox)
    await hub.unsubscribe("known", Inbox())
    assert hub.listener_count("known") == 1


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
    await hub.start()
    publisher = aioredis.Redis.from_url(redis_process.url)
    try:
        inbox = Inbox()
        await hub.subscribe("tickers:a", inbox)
        await hub.subscribe("tickers:b", inbox)
        assert await publisher.publish("p:tickers:a", b"before") == 1
        assert await inbox.next() == ("tickers:a", b"before")

        redis_process.stop()
        await eventually(lambda: not hub.connected, within=15)
        redis_process.start()
        async with asyncio.timeout(20):
            await reconnected.wait()
        assert hub.connected and hub.reconnects == 1
        assert sorted(calls) == ["first", "second"]

        await publisher.aclose()
        publisher = aioredis.Redis.from_url(redis_process.url)
        for channel in ("tickers:a", "tickers:b"):
            assert await publisher.publish("p:" + channel, b"after") == 1
            assert await inbox.next() == (channel, b"after")
    finally:
        await publisher.aclose()
        await hub.stop()
    assert not hub.connected


async def test_subscribe_while_redis_is_down_times_out_cleanly(redis_process):
    """With Redis down, subscribe fails after its timeout and leaves no listener behind,
    also when several listeners wait for the same new channel."""
    hub = Hub(redis_process.url, "p:")
    await hub.start()
    try:
        await eventually(lambda: hub.connected, within=15)
        redis_process.stop()
        await eventually(lambda: not hub.connected, within=15)
        first, second = Inbox(), Inbox()
        results = await asyncio.gather(
            hub.subscribe("orders:9", first, timeout=0.3),
            hub.subscribe("orders:9", second, timeout=0.3),
            return_exceptions=True,
        )
        assert all(isinstance(r, TimeoutError) for r in results), results
        assert all("did not confirm a subscription to 'orders:9'" in str(r) for r in results)
        assert hub.listener_count("orders:9") == 0 and hub.channel_count == 0
    finally:
        await hub.stop()


async def test_subscribe_waits_for_redis_to_come_back(redis_process):
    """A subscribe issued while Redis is down completes once it is back (within the
    timeout), confirmed, and delivers."""
    hub = Hub(redis_process.url, "p:")
    await hub.start()
    publisher = None
    try:
        await eventually(lambda: hub.connected, within=15)
        redis_process.stop()
        await eventually(lambda: not hub.connected, within=15)
        inbox = Inbox()
        pending = asyncio.create_task(hub.subscribe("bots:1", inbox, timeout=20))
        await asyncio.sleep(0)
        assert not pending.done()
        redis_process.start()
        await pending
        publisher = aioredis.Redis.from_url(redis_process.url)
        assert await publisher.publish("p:bots:1", b"x") == 1
        assert await inbox.next() == ("bots:1", b"x")
    finally:
        if publisher is not None:
            await publisher.aclose()
        await hub.stop()


async def test_unsubscribe_while_down_is_not_resubscribed(redis_process):
    """A channel whose last listener left while Redis was down is not subscribed again
    after the reconnect."""
    hub = Hub(redis_process.url, "p:")
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    hub.on_reconnect(on_reconnect)
    await hub.start()
    publisher = None
    try:
        inbox = Inbox()
        await hub.subscribe("gone", inbox)
        await hub.subscribe("kept", inbox)
        redis_process.stop()
        await eventually(lambda: not hub.connected, within=15)
        await hub.unsubscribe("gone", inbox)
        redis_process.start()
        async with asyncio.timeout(20):
            await reconnected.wait()
        publisher = aioredis.Redis.from_url(redis_process.url)
        assert await _numsub(publisher, "p:gone") == 0
        assert await _numsub(publisher, "p:kept") == 1
    finally:
        if publisher is not None:
            await publisher.aclose()
        await hub.stop()


async def test_stop_before_start_and_twice_is_safe(settings):
    """stop() on a hub that never started, or twice, does not raise."""
    hub = Hub(settings.redis_url, settings.redis_prefix)
    await hub.stop()
    await hub.start()
    await hub.stop()
    await hub.stop()
    assert not hub.connected


async def test_waiting_listener_survives_the_first_subscriber_giving_up(redis_process):
    """Redis down: the first subscriber of a channel times out, a second one with a
    longer timeout keeps waiting and is confirmed by the reconnect's resubscription."""
    hub = Hub(redis_process.url, "p:")
    await hub.start()
    publisher = None
    try:
        await eventually(lambda: hub.connected, within=15)
        redis_process.stop()
        await eventually(lambda: not hub.connected, within=15)
        impatient, patient = Inbox(), Inbox()
        first = asyncio.create_task(hub.subscribe("orders:5", impatient, timeout=0.2))
        second = asyncio.create_task(hub.subscribe("orders:5", patient, timeout=20))
        with pytest.raises(TimeoutError):
            await first
        assert hub.listener_count("orders:5") == 1 and not second.done()
        redis_process.start()
        await second
        publisher = aioredis.Redis.from_url(redis_process.url)
        assert await publisher.publish("p:orders:5", b"y") == 1
        assert await patient.next() == ("orders:5", b"y")
        assert impatient.got == []
    finally:
        if publisher is not None:
            await publisher.aclose()
        await hub.stop()


async def test_silent_redis_is_detected_and_recovered(redis_process, monkeypatch):
    """A Redis that stops answering without closing the socket (SIGSTOP) is given up on
    after two unanswered pings; once it answers again the hub reconnects and delivers."""
    import os
    import signal

    import fullon_gateway.stream.hub as hub_module

    monkeypatch.setattr(hub_module, "_IDLE_PING", 0.2)  # seconds idle before a ping
    hub = Hub(redis_process.url, "p:")
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    hub.on_reconnect(on_reconnect)
    await hub.start()
    publisher = None
    pid = redis_process.process.pid
    try:
        inbox = Inbox()
        await hub.subscribe("quiet", inbox)
        await asyncio.sleep(0.5)  # idle through two pings that Redis answers
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
        await hub.stop()
