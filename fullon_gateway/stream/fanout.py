"""Process-wide fan-out: Redis channel -> the subscriptions that want it.

The one place that counts who wants a channel: the first subscription of a channel
starts the hub's ``listen`` (in a task of its own, so it survives that subscriber
giving up), later ones wait for the same confirmation, and the last one to leave
unlistens. A message is decoded once, its frame tail built once (frames.py); inside
a route, subscriptions are indexed by the change keys they want (a ticker route is
per exchange, a subscription usually wants a few symbols), so a change only visits
the sockets that want it. No await, no per-socket copy of the decoded message.

While a subscription is syncing (snapshot or replay being read) its changes go to a
buffer; ``go_live`` - a plain function, so nothing can run in between - queues the
ack, the snapshot or replay and the buffered changes newer than what was read, and
switches the subscription to live.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

from fullon_gateway.stream import frames
from fullon_gateway.stream.connection import Connection
from fullon_gateway.stream.counters import StreamCounters
from fullon_gateway.stream.hub import Channel, Hub
from fullon_gateway.stream.kinds import Decoder, Source, Target

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT = 5.0  # seconds a subscriber waits for Redis to confirm a new channel


class Subscription:
    __slots__ = ("active", "buffer", "conn", "head", "last_seq", "replay_head",
                 "request_id", "resync", "stream", "target")

    def __init__(self, conn: Connection, target: Target, request_id: Any) -> None:
        self.conn = conn
        self.target = target
        self.stream = target.stream
        self.request_id = request_id
        self.head = frames.head(target.stream, request_id, target.stream_key)
        self.replay_head = self.head + b'"recovered":true,'
        self.buffer: list[frames.Change] | None = None  # not None while syncing
        self.last_seq = 0  # the newest seq the client has (snapshot or change)
        self.active = True
        self.resync = False  # buffering since the hub lost Redis, until resynced

    def deliver(self, change: frames.Change) -> bool:
        """A live change from the route (whose key this subscription wants)."""
        accepts = self.target.accepts
        if accepts is not None and not accepts(change.key, change.data):
            return False
        if self.buffer is not None:
            self.buffer.append(change)
            return False
        return self.send(change, self.head, change.ts)

    def send(self, change: frames.Change, head: bytes, ts: float | None) -> bool:
        """The one path onto the socket's queue: live, buffered and replayed changes."""
        seq = change.seq
        if seq is not None:
            # The snapshot was read on another Redis connection than the hub's, so a
            # change it already contains can reach the hub after the sync finished.
            # One pub/sub connection delivers in publish order, so seq only grows here:
            # anything not newer than what the client has is such a straggler.
            if seq <= self.last_seq:
                return False
            self.last_seq = seq
        conn, frame = self.conn, head + change.tail
        # write_now first: a frame written at once needs no conflation key (one tuple
        # fewer for the garbage collector per delivery); enqueue would try it too.
        if not conn.write_now(frame, ts):
            conn.enqueue(frame, (self, change.key) if self.target.conflated else None,
                         ts, self.stream)
        return True


class Snapshot(NamedTuple):
    seq: int  # the global seq G read atomically with it
    result: Any


class Replay(NamedTuple):
    seq: int  # G
    changes: list[frames.Change]  # every change of the target's units after ``since``


@dataclass(frozen=True)
class Ack:
    request_id: Any
    action: str
    result: dict[str, Any]


def go_live(sub: Subscription, state: Snapshot | Replay, ack: Ack | None,
            recovered: bool | None) -> None:
    """Queue ack + snapshot (or the replay), then the buffered changes newer than G, and
    switch ``sub`` to live. A plain function: the order on the queue is the order on
    the wire, and no change can slip in between the state read and live delivery."""
    conn, t = sub.conn, sub.target
    if ack is not None:
        result = ack.result if recovered is None else {**ack.result, "recovered": recovered}
        conn.enqueue(frames.reply(ack.request_id, ack.action, result))
    if isinstance(state, Replay):
        for change in state.changes:
            if t.wants(change.key, change.data):
                sub.send(change, sub.replay_head, None)
    else:
        # After Redis lost its data the counter is gone (G = 0) until the next publish
        # restarts it from the clock; never show the client a smaller seq.
        shown = max(state.seq, sub.last_seq)
        conn.enqueue(frames.snapshot(t.stream, sub.request_id, t.stream_key, shown,
                                     state.result, recovered), stream=t.stream)
    sub.last_seq = max(sub.last_seq, state.seq)
    buffered, sub.buffer = sub.buffer or [], None
    for change in buffered:
        if change.seq is None or change.seq > state.seq:
            sub.send(change, sub.head, change.ts)


class _Route:
    """One channel (or pattern): its decoder and its subscriptions, indexed by wanted key.
    The decoder is the first subscriber's source's: one channel has one publisher."""

    def __init__(self, channel: Channel, decode: Decoder, delivered: Any,
                 nonfinite: Any) -> None:
        self.channel = channel
        self.decode = decode
        self.members: dict[Subscription, frozenset[str] | None] = {}
        self.everyone: set[Subscription] = set()  # subscriptions that want every key
        self.by_key: dict[str | None, set[Subscription]] = {}
        self.ready: asyncio.Task[None] | None = None  # the hub's listen, until confirmed
        self.delivered = delivered  # the stream's delivery counter
        self.nonfinite = nonfinite  # NaN/Infinity in fullon values, sent as null

    def add(self, sub: Subscription) -> None:
        keys = sub.target.keys
        self.members[sub] = keys
        if keys is None:
            self.everyone.add(sub)
        else:
            for key in keys:
                self.by_key.setdefault(key, set()).add(sub)

    def discard(self, sub: Subscription) -> bool:
        """Remove ``sub``; True when it was a member."""
        if sub not in self.members:
            return False
        keys = self.members.pop(sub)
        if keys is None:
            self.everyone.discard(sub)
        else:
            for key in keys:
                subs = self.by_key[key]
                subs.discard(sub)
                if not subs:
                    del self.by_key[key]
        return True

    def on_message(self, channel: str, data: bytes) -> None:
        try:
            change = self.decode(channel, data)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored malformed message on %s", channel)
            return
        if change.nonfinite:  # fullon's NaN/Infinity, sent as null
            self.nonfinite.inc(change.nonfinite)
        # deliver() never changes a route (closing a slow socket is a task), so the sets
        # are iterated as they are, without a copy per message.
        delivered = 0
        for sub in self.everyone:
            delivered += sub.deliver(change)
        if self.by_key:
            for sub in self.by_key.get(change.key, ()):
                delivered += sub.deliver(change)
        if delivered:
            self.delivered.inc(delivered)


class Fanout:
    def __init__(self, hub: Hub, counters: StreamCounters,
                 confirm_timeout: float = CONFIRM_TIMEOUT) -> None:
        self.hub = hub
        self.counters = counters
        self.confirm_timeout = confirm_timeout
        self._routes: dict[Channel, _Route] = {}

    @property
    def channel_count(self) -> int:
        return len(self._routes)

    def subscribers(self, channel: Channel) -> int:
        route = self._routes.get(channel)
        return 0 if route is None else len(route.members)

    async def attach(self, sub: Subscription) -> None:
        """Route every channel of ``sub``'s target to it; returns once Redis confirmed
        them all (TimeoutError after ``confirm_timeout``)."""
        for source in sub.target.sources:
            await self._add(source, sub)

    async def detach(self, sub: Subscription) -> None:
        for source in sub.target.sources:
            await self._remove(source.channel, sub)

    async def _add(self, source: Source, sub: Subscription) -> None:
        channel = source.channel
        route = self._routes.get(channel)
        if route is None:
            route = self._routes[channel] = _Route(channel, source.decode,
                                                   self.counters.delivered(sub.stream),
                                                   self.counters.nonfinite(sub.stream))
            listening = asyncio.ensure_future(self.hub.listen(channel, route.on_message))
            listening.add_done_callback(functools.partial(self._listened, route))
            route.ready = listening
        route.add(sub)
        ready = route.ready
        if ready is None:
            return  # already confirmed
        try:
            async with asyncio.timeout(self.confirm_timeout):
                await asyncio.shield(ready)
        except BaseException as exc:
            await self._remove(channel, sub)
            if isinstance(exc, TimeoutError):  # ours: hub.listen has no timeout
                raise TimeoutError(f"Redis did not confirm a subscription to "
                                   f"{channel.name!r} within {self.confirm_timeout} s") from None
            raise

    def _listened(self, route: _Route, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is not None:
            if self._routes.get(route.channel) is route:
                del self._routes[route.channel]  # its waiters get the error themselves
        else:
            route.ready = None

    async def _remove(self, channel: Channel, sub: Subscription) -> None:
        route = self._routes.get(channel)
        if route is None or not route.discard(sub) or route.members:
            return
        del self._routes[channel]
        ready = route.ready
        if ready is not None and not ready.done():
            ready.cancel()  # nobody waits any more: stop listening (hub.listen cleans up)
        else:
            await self.hub.unlisten(channel)
