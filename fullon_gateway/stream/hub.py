"""The Redis pub/sub transport: one connection per process, one listener per channel.

The hub only moves bytes: ``listen`` puts one listener on a channel or a glob pattern
(a ``Channel``) and returns once Redis confirmed the subscription, so a caller can
read a snapshot afterwards knowing no later publish is missed; ``unlisten`` takes it
off. Who wants a channel, and how many of them, is the fan-out's business
(fanout.py). Each message reaches its listener as ``(channel, raw bytes)``, without
the prefix; listeners must be quick and never block (they decode once and enqueue).

When the connection drops, the hub reconnects with backoff, resubscribes every
channel and, once Redis confirmed them all, runs the reconnect callbacks so that the
streams can resync what they may have missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, NamedTuple

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from fullon_gateway.stream.names import glob_escape

log = logging.getLogger(__name__)

Listener = Callable[[str, bytes], None]
ReconnectCallback = Callable[[], Coroutine[Any, Any, None]]

IDLE_PING = 5.0  # seconds without traffic before the hub pings Redis
_BACKOFF_MAX = 5.0
_CONTROL = "gateway:hub"


class Channel(NamedTuple):
    """A Redis channel name (SUBSCRIBE) or, with ``pattern``, a glob (PSUBSCRIBE)."""

    name: str
    pattern: bool = False


class Hub:
    def __init__(self, redis_url: str, prefix: str = "", idle_ping: float = IDLE_PING) -> None:
        self._url = redis_url
        self._prefix = prefix
        self._idle_ping = idle_ping
        # One table per subscription kind: the read loop looks a message up in one dict.
        self._channels: dict[str, Listener] = {}
        # PSUBSCRIBE, for publishers whose channel names cannot be listed in advance
        # (fullon_cache's per-symbol ticker channels).
        self._patterns: dict[str, Listener] = {}
        self._waiting: dict[Channel, list[asyncio.Future[None]]] = {}
        self._reconnect_callbacks: list[ReconnectCallback] = []
        self._disconnect_callbacks: list[Callable[[], None]] = []
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._lock = asyncio.Lock()  # serializes commands on the pub/sub connection
        self.reconnects = 0
        self.failed_connects = 0  # attempts that could not reach Redis (the backoff's)
        # Grows each time the connection is lost; ``in_sync`` is false from then until
        # Redis confirmed every channel on the next one. A read done while in sync, with
        # the same generation after it, is followed by every later publish (service.py).
        self.generation = 0
        self._in_sync = asyncio.Event()
        self.messages = 0
        self.pings = 0  # idle pings sent (each answered one resets the silence count)
        # Reconnect callbacks run once Redis confirmed every resubscription, so a
        # resync's snapshot read cannot miss a publish that the new connection missed.
        self._unconfirmed = 0
        self._resync_due = False

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fullon-hub")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_connection()

    async def __aenter__(self) -> Hub:
        await self.start()
        return self

    async def __aexit__(self, _t: type[BaseException] | None, _e: BaseException | None,
                        _tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def channel_count(self) -> int:
        return len(self._channels) + len(self._patterns)

    @property
    def in_sync(self) -> bool:
        """Connected, and Redis confirmed every channel on this connection."""
        return self._in_sync.is_set()

    async def wait_in_sync(self) -> None:
        await self._in_sync.wait()

    def listening(self, channel: Channel) -> bool:
        return channel.name in self._table(channel)

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` (synchronously, before any message on a new connection)
        each time the connection to Redis is lost."""
        self._disconnect_callbacks.append(callback)

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        self._reconnect_callbacks.append(callback)

    # -- subscriptions ---------------------------------------------------------------
    def _table(self, channel: Channel) -> dict[str, Listener]:
        return self._patterns if channel.pattern else self._channels

    def _wire_name(self, channel: Channel) -> str:
        # The prefix is matched literally inside a pattern.
        return (glob_escape(self._prefix) if channel.pattern else self._prefix) + channel.name

    async def listen(self, channel: Channel, listener: Listener) -> None:
        """Make ``listener`` the channel's listener; returns once Redis confirmed it.

        No timeout of its own (the caller bounds the wait): while Redis is down the
        channel stays registered and the reconnect's resubscription confirms it.
        """
        self._table(channel)[channel.name] = listener
        confirmed = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(channel, [])
        waiting.append(confirmed)
        try:
            await self._connected.wait()
            async with self._lock:
                if channel.pattern:
                    await self._pubsub.psubscribe(self._wire_name(channel))
                else:
                    await self._pubsub.subscribe(self._wire_name(channel))
            await confirmed
        except BaseException:
            table = self._table(channel)
            if table.get(channel.name) is listener:
                del table[channel.name]
            raise
        finally:
            if confirmed in waiting:
                waiting.remove(confirmed)
            if not waiting and self._waiting.get(channel) is waiting:
                del self._waiting[channel]

    def keep(self, channel: Channel, listener: Listener) -> None:
        """Register a listener without waiting for Redis: the channel is subscribed at the
        next (re)connect, as every registered one is."""
        self._table(channel)[channel.name] = listener

    async def unlisten(self, channel: Channel) -> None:
        """Drop the channel's listener and unsubscribe (harmless when there is none)."""
        if self._table(channel).pop(channel.name, None) is None or not self.connected:
            return
        with contextlib.suppress(RedisError, OSError):
            async with self._lock:
                if channel.pattern:
                    await self._pubsub.punsubscribe(self._wire_name(channel))
                else:
                    await self._pubsub.unsubscribe(self._wire_name(channel))

    # -- the reader ------------------------------------------------------------------
    async def _connect(self) -> None:
        # No silent retries inside redis-py: a drop must surface here so we resync.
        self._client = aioredis.Redis.from_url(
            self._url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2.0
        )
        self._pubsub = self._client.pubsub()
        channels = [self._prefix + c for c in self._channels]
        patterns = [self._wire_name(Channel(p, True)) for p in self._patterns]
        # A control channel keeps the connection subscribed (and readable) even when
        # no stream wants anything yet.
        self._unconfirmed = 1 + len(channels) + len(patterns)
        await self._pubsub.subscribe(self._prefix + _CONTROL, *channels)
        if patterns:
            await self._pubsub.psubscribe(*patterns)

    async def _close_connection(self) -> None:
        self._connected.clear()
        self._in_sync.clear()
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
                    self._resync_due = True
                first = False
                backoff = 0.1
                await self._read_forever()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._connected.is_set():
                    self.generation += 1
                    self._in_sync.clear()  # now: closing the connection awaits
                    log.warning("redis pub/sub connection lost: %r", exc)
                    for callback in list(self._disconnect_callbacks):
                        try:
                            callback()
                        except Exception:
                            log.exception("hub disconnect callback failed")
                else:
                    self.failed_connects += 1
                await self._close_connection()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _read_forever(self) -> None:
        idle_pings = 0
        prefix_len = len(self._prefix)
        pattern_prefix_len = len(glob_escape(self._prefix))
        channels, patterns = self._channels, self._patterns
        while True:
            msg = await self._pubsub.get_message(timeout=self._idle_ping)
            if msg is None:
                # Nothing for a while: ping, and give up on a connection that stays
                # silent through two pings (a dead peer never sends an EOF).
                idle_pings += 1
                if idle_pings > 2:
                    raise ConnectionError("redis pub/sub silent")
                async with self._lock:
                    await self._pubsub.ping()
                self.pings += 1
                continue
            idle_pings = 0
            kind = msg["type"]
            if kind == "message":
                listener = channels.get(msg["channel"].decode()[prefix_len:])
            elif kind == "pmessage":
                listener = patterns.get(msg["pattern"].decode()[pattern_prefix_len:])
            else:
                if kind in ("subscribe", "psubscribe"):
                    self._confirmed_one(kind, msg["channel"].decode())
                continue
            self.messages += 1
            if listener is not None:
                channel = msg["channel"].decode()[prefix_len:]
                try:
                    listener(channel, msg["data"])
                except Exception:
                    log.exception("hub listener failed on %s", channel)
            # Let the socket writers run before the next message: redis-py hands over
            # everything it has buffered back to back, and without a yield two
            # publishes that arrive together conflate on every socket before any
            # writer sent the first (measured: 3x the clean fan-out rate).
            await asyncio.sleep(0)

    def _confirmed_one(self, kind: str, wire_name: str) -> None:
        if self._unconfirmed > 0:
            self._unconfirmed -= 1
            if self._unconfirmed == 0:
                self._in_sync.set()
            if self._unconfirmed == 0 and self._resync_due:
                self._resync_due = False
                for callback in list(self._reconnect_callbacks):
                    asyncio.create_task(callback())  # noqa: RUF006 - fire and forget
        if kind == "psubscribe":
            channel = Channel(wire_name[len(glob_escape(self._prefix)):], True)
        else:
            channel = Channel(wire_name[len(self._prefix):])
        for future in self._waiting.get(channel, ()):
            if not future.done():
                future.set_result(None)
