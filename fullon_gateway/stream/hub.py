"""The Redis fan-out hub: one pub/sub connection per process.

Channels are subscribed while at least one listener wants them (reference counts)
and unsubscribed when the last one leaves. Each message is handed, as raw bytes, to
every listener of its channel; listeners must be quick and non-blocking (they decode
once and enqueue). ``subscribe`` returns only after Redis confirmed the subscription,
so a caller can read a snapshot afterwards knowing no later publish is missed.

When the connection drops, the hub reconnects with backoff, resubscribes every
channel and then calls the reconnect callbacks so that streams can resync what they
may have missed while it was down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Listener = Callable[[str, bytes], None]
ReconnectCallback = Callable[[], Coroutine[Any, Any, None]]

_IDLE_PING = 5.0  # seconds without traffic before the hub pings Redis
_BACKOFF_MAX = 5.0


class Hub:
    def __init__(self, redis_url: str, prefix: str = "") -> None:
        self._url = redis_url
        self._prefix = prefix
        self._listeners: dict[str, set[Listener]] = {}
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._reconnect_callbacks: list[ReconnectCallback] = []
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._lock = asyncio.Lock()  # serializes SUBSCRIBE/UNSUBSCRIBE commands
        self.reconnects = 0
        self.messages = 0

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fullon-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_connection()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def channel_count(self) -> int:
        return len(self._listeners)

    def listener_count(self, channel: str) -> int:
        return len(self._listeners.get(channel, ()))

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        self._reconnect_callbacks.append(callback)

    # -- subscriptions ---------------------------------------------------------------
    async def subscribe(self, channel: str, listener: Listener, timeout: float = 5.0) -> None:
        """Add a listener; on the first one, subscribe in Redis and wait for its ack."""
        listeners = self._listeners.setdefault(channel, set())
        listeners.add(listener)
        if len(listeners) > 1 and channel not in self._confirmed:
            return
        if channel in self._confirmed:  # someone else's subscribe is in flight
            await asyncio.wait_for(asyncio.shield(self._confirmed[channel]), timeout)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmed[channel] = future
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
            async with self._lock:
                await self._pubsub.subscribe(self._prefix + channel)
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except BaseException:
            self._discard(channel, listener)
            raise
        finally:
            if self._confirmed.get(channel) is future:
                del self._confirmed[channel]

    async def unsubscribe(self, channel: str, listener: Listener) -> None:
        if self._discard(channel, listener) and self._connected.is_set():
            with contextlib.suppress(RedisError, OSError):
                async with self._lock:
                    await self._pubsub.unsubscribe(self._prefix + channel)

    def _discard(self, channel: str, listener: Listener) -> bool:
        """Remove a listener; True when the channel has none left."""
        listeners = self._listeners.get(channel)
        if listeners is None:
            return False
        listeners.discard(listener)
        if listeners:
            return False
        del self._listeners[channel]
        return True

    # -- the reader ------------------------------------------------------------------
    async def _connect(self) -> None:
        # No silent retries inside redis-py: a drop must surface here so we resync.
        self._client = aioredis.Redis.from_url(
            self._url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2.0
        )
        self._pubsub = self._client.pubsub()
        channels = [self._prefix + c for c in self._listeners]
        # A control channel keeps the connection subscribed (and readable) even when
        # no stream wants anything yet.
        await self._pubsub.subscribe(self._prefix + "gateway:hub", *channels)

    async def _close_connection(self) -> None:
        self._connected.clear()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
        self._pubsub = self._client = None

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            try:
                await self._connect()
                self._connected.set()
                if not first:
                    self.reconnects += 1
                    log.warning("redis pub/sub reconnected; resyncing streams")
                    for callback in list(self._reconnect_callbacks):
                        asyncio.create_task(callback())  # noqa: RUF006 - fire and forget
                first = False
                backoff = 0.1
                await self._read_forever()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._connected.is_set():
                    log.warning("redis pub/sub connection lost: %r", exc)
                await self._close_connection()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _read_forever(self) -> None:
        idle_pings = 0
        prefix_len = len(self._prefix)
        while True:
            msg = await self._pubsub.get_message(timeout=_IDLE_PING)
            if msg is None:
                # Nothing for a while: ping, and give up on a connection that stays
                # silent through two pings (a dead peer never sends an EOF).
                idle_pings += 1
                if idle_pings > 2:
                    raise ConnectionError("redis pub/sub silent")
                async with self._lock:
                    await self._pubsub.ping()
                continue
            idle_pings = 0
            kind = msg["type"]
            if kind == "message":
                channel = msg["channel"].decode()[prefix_len:]
                self.messages += 1
                for listener in tuple(self._listeners.get(channel, ())):
                    try:
                        listener(channel, msg["data"])
                    except Exception:
                        log.exception("hub listener failed on %s", channel)
            elif kind == "subscribe":
                channel = msg["channel"].decode()[prefix_len:]
                future = self._confirmed.get(channel)
                if future is not None and not future.done():
                    future.set_result(None)
