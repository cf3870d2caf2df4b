"""The Redis pub/sub transport: one connection per process, one listener per channel.

The hub only moves bytes: ``listen`` puts one listener on a channel or a glob pattern
(a ``Channel``) and returns once Redis confirmed the subscription, so a caller can
read a snapshot afterwards knowing no later publish is missed; ``unlisten`` takes it
off. Who wants a channel, and how many of them, is the fan-out's business
(fanout.py). Each message reaches its listener as ``(channel, raw bytes)``, without
the prefix; listeners must be quick and never block (they decode once and enqueue).
The fullon watcher's notifications (keyspace channels, ``ticker_updates:*``) arrive on
the same connection: one pub/sub connection per process, whatever listens.

The connection is spoken directly (wire.py): one socket read, every message in it
dispatched, no per-message timeout or retry scope.

When the connection drops, the hub reconnects with backoff, resubscribes every
channel and, once Redis confirmed them all, runs the reconnect callbacks so that the
streams can resync what they may have missed meanwhile.

Over 300 lines on purpose: the subscriptions, the reconnect loop and the read loop
share the connection's state (what is subscribed, what Redis confirmed, the
generation), and each of them is only right read beside the other two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, NamedTuple

from redis.exceptions import RedisError

from fullon_gateway.stream.burst import Burst
from fullon_gateway.stream.names import glob_escape
from fullon_gateway.stream.wire import Wire

log = logging.getLogger(__name__)

Listener = Callable[[str, bytes], None]
ReconnectCallback = Callable[[], Coroutine[Any, Any, None]]

IDLE_PING = 5.0  # seconds without traffic before the hub pings Redis
_BACKOFF_MAX = 5.0
_CONTROL = "gateway:hub"


class Channel(NamedTuple):
    """A Redis channel name (SUBSCRIBE) or, with ``pattern``, a glob (PSUBSCRIBE).

    The gateway's prefix is put in front of the name (matched literally in a pattern)
    and taken off the channel a listener is given; a ``raw`` name is used as it is
    (Redis' own ``__keyspace@{db}__:...`` channels, which the prefix cannot lead).
    """

    name: str
    pattern: bool = False
    raw: bool = False


class _Entry(NamedTuple):
    channel: Channel
    listener: Listener
    strip: int  # characters of the prefix to take off the channel name
    pace: bool  # let other tasks (socket writers) run after each message


class Hub:
    def __init__(self, redis_url: str, prefix: str = "", idle_ping: float = IDLE_PING) -> None:
        self._url = redis_url
        self._prefix = prefix
        self._idle_ping = idle_ping
        self._entries: dict[Channel, _Entry] = {}
        # What the read loop looks a message up in: the wire name (bytes, as Redis
        # sends it) of each SUBSCRIBE and PSUBSCRIBE.
        self._exact: dict[bytes, _Entry] = {}
        self._globs: dict[bytes, _Entry] = {}
        self._waiting: dict[Channel, list[asyncio.Future[None]]] = {}
        self._reconnect_callbacks: list[ReconnectCallback] = []
        self._disconnect_callbacks: list[Callable[[], None]] = []
        self._batch_callbacks: list[Callable[[], None]] = []
        # Direct socket writes while a read is dispatched, one send per socket (burst.py).
        self.burst = Burst()
        self._wire: Wire | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
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
        return len(self._entries)

    @property
    def in_sync(self) -> bool:
        """Connected, and Redis confirmed every channel on this connection."""
        return self._in_sync.is_set()

    async def wait_in_sync(self) -> None:
        await self._in_sync.wait()

    def listening(self, channel: Channel) -> bool:
        return channel in self._entries

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` (synchronously, before any message on a new connection)
        each time the connection to Redis is lost."""
        self._disconnect_callbacks.append(callback)

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        self._reconnect_callbacks.append(callback)

    def after_batch(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` (synchronously) once every message of a socket read was
        dispatched: a listener that collects work (the fullon watcher) starts it there,
        with everything that arrived together, rather than once per message."""
        self._batch_callbacks.append(callback)

    # -- subscriptions ---------------------------------------------------------------
    def _wire_name(self, channel: Channel) -> bytes:
        if channel.raw:
            return channel.name.encode()
        # The prefix is matched literally inside a pattern.
        lead = glob_escape(self._prefix) if channel.pattern else self._prefix
        return (lead + channel.name).encode()

    def _register(self, channel: Channel, listener: Listener, pace: bool) -> _Entry:
        self._drop(channel)
        entry = _Entry(channel, listener, 0 if channel.raw else len(self._prefix), pace)
        self._entries[channel] = entry
        (self._globs if channel.pattern else self._exact)[self._wire_name(channel)] = entry
        return entry

    def _drop(self, channel: Channel) -> _Entry | None:
        entry = self._entries.pop(channel, None)
        if entry is not None:
            table = self._globs if channel.pattern else self._exact
            name = self._wire_name(channel)
            if table.get(name) is entry:
                del table[name]
        return entry

    def _send_subscribe(self, channel: Channel, on: bool = True) -> None:
        assert self._wire is not None
        verb = ("PSUBSCRIBE" if on else "PUNSUBSCRIBE") if channel.pattern else (
            "SUBSCRIBE" if on else "UNSUBSCRIBE")
        self._wire.send(verb, self._wire_name(channel))

    async def listen(self, channel: Channel, listener: Listener, pace: bool = True) -> None:
        """Make ``listener`` the channel's listener; returns once Redis confirmed it.

        ``pace`` (the default, for listeners that deliver to sockets) lets the socket
        writers run after each message; a listener that only records something (the
        fullon watcher) passes False and its messages are dispatched back to back.
        No timeout of its own (the caller bounds the wait): while Redis is down the
        channel stays registered and the reconnect's resubscription confirms it.
        """
        entry = self._register(channel, listener, pace)
        confirmed = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(channel, [])
        waiting.append(confirmed)
        try:
            await self._connected.wait()
            self._send_subscribe(channel)
            await confirmed
        except BaseException:
            if self._entries.get(channel) is entry:
                self._drop(channel)
            raise
        finally:
            if confirmed in waiting:
                waiting.remove(confirmed)
            if not waiting and self._waiting.get(channel) is waiting:
                del self._waiting[channel]

    def keep(self, channel: Channel, listener: Listener, pace: bool = True) -> None:
        """Register a listener without waiting for Redis: the channel is subscribed at the
        next (re)connect, as every registered one is."""
        self._register(channel, listener, pace)

    async def unlisten(self, channel: Channel) -> None:
        """Drop the channel's listener and unsubscribe (harmless when there is none)."""
        if self._drop(channel) is None or not self.connected:
            return
        with contextlib.suppress(RedisError, OSError):
            self._send_subscribe(channel, on=False)

    # -- the reader ------------------------------------------------------------------
    async def _connect(self) -> None:
        self._wire = wire = await Wire.open(self._url, connect_timeout=2.0)
        channels = [self._wire_name(c) for c in self._entries if not c.pattern]
        patterns = [self._wire_name(c) for c in self._entries if c.pattern]
        # A control channel keeps the connection subscribed (and readable) even when
        # no stream wants anything yet.
        self._unconfirmed = 1 + len(channels) + len(patterns)
        wire.send("SUBSCRIBE", (self._prefix + _CONTROL).encode(), *channels)
        if patterns:
            wire.send("PSUBSCRIBE", *patterns)

    async def _close_connection(self) -> None:
        self._connected.clear()
        self._in_sync.clear()
        if self._wire is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._wire.aclose()
        self._wire = None

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
        wire = self._wire
        assert wire is not None
        idle_pings = 0
        while True:
            try:
                # One timeout per socket read (a read holds every message buffered).
                async with asyncio.timeout(self._idle_ping):
                    replies = await wire.read()
            except TimeoutError:
                # Nothing for a while: ping, and give up on a connection that stays
                # silent through two pings (a dead peer never sends an EOF).
                idle_pings += 1
                if idle_pings > 2:
                    raise ConnectionError("redis pub/sub silent") from None
                wire.send("PING")
                self.pings += 1
                continue
            idle_pings = 0
            burst = self.burst
            burst.begin()
            try:
                await self._dispatch(replies, burst)
            finally:
                burst.flush()
            for done in self._batch_callbacks:
                try:
                    done()
                except Exception:
                    log.exception("hub batch callback failed")

    async def _dispatch(self, replies: list[Any], burst: Burst) -> None:
        """Hand every message of one read to its listener. From the second fanned-out
        message on the burst holds direct writes; it is flushed before every yield to
        the loop and once the read was dispatched (burst.py)."""
        exact, globs = self._exact, self._globs
        for reply in replies:
            kind = reply[0]
            if kind == b"message":
                entry = exact.get(reply[1])
                channel, data = reply[1], reply[2]
            elif kind == b"pmessage":
                entry = globs.get(reply[1])
                channel, data = reply[2], reply[3]
            else:
                if kind in (b"subscribe", b"psubscribe"):
                    self._confirmed_one(kind == b"psubscribe", reply[1])
                continue
            self.messages += 1
            if entry is None:
                continue
            name = channel.decode()[entry.strip:]
            try:
                entry.listener(name, data)
            except Exception:
                log.exception("hub listener failed on %s", name)
            if not entry.pace:
                continue
            if burst.woke:
                # A socket writer got work: let the writers run before the next
                # message, or two publishes that arrive together conflate on every
                # queued socket before its writer sent the first (measured: 3x the
                # clean fan-out rate). Sockets that keep up were written at once.
                burst.flush()
                await asyncio.sleep(0)
                burst.begin()
            else:
                # The first fanned-out message was written at once (a lone one, a
                # broadcast, waits for nothing); the frames of the later ones are held
                # and each socket's sent together at the flush.
                burst.open = True

    def _confirmed_one(self, pattern: bool, wire_name: bytes) -> None:
        if self._unconfirmed > 0:
            self._unconfirmed -= 1
            if self._unconfirmed == 0:
                self._in_sync.set()
            if self._unconfirmed == 0 and self._resync_due:
                self._resync_due = False
                for callback in list(self._reconnect_callbacks):
                    asyncio.create_task(callback())  # noqa: RUF006 - fire and forget
        entry = (self._globs if pattern else self._exact).get(wire_name)
        if entry is None:
            return
        for future in self._waiting.get(entry.channel, ()):
            if not future.done():
                future.set_result(None)
