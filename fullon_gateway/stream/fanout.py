"""Process-wide fan-out: Redis channel -> the subscriptions that want it.

One hub listener per channel (not per socket). A message is decoded once, its frame
tail built once (frames.py), then each subscription checks its filter and enqueues
its pre-encoded head + the shared tail on its connection's queue. No await, no
per-socket copy of the decoded message.

While a subscription is syncing (snapshot or replay being read) its changes go to a
buffer instead of the queue; the sync releases the ones newer than what it read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fullon_gateway.metrics import Metrics
from fullon_gateway.stream import frames
from fullon_gateway.stream.connection import Connection
from fullon_gateway.stream.counters import StreamCounters
from fullon_gateway.stream.hub import Hub
from fullon_gateway.stream.streams import Target

log = logging.getLogger(__name__)

Buffered = tuple[frames.Change, Any]


class Subscription:
    __slots__ = ("active", "buffer", "conflated", "conn", "head", "last_seq",
                 "replay_head", "request_id", "stream", "target")

    def __init__(self, conn: Connection, target: Target, request_id: Any) -> None:
        self.conn = conn
        self.target = target
        self.stream = target.stream
        self.request_id = request_id
        self.head = frames.head(target.stream, request_id, target.stream_key)
        self.replay_head = self.head + b'"recovered":true,'
        self.conflated = target.conflated
        self.buffer: list[frames.Change] | None = None
        self.last_seq = 0  # the newest seq the client has (snapshot or change)
        self.active = True

    def deliver(self, change: frames.Change) -> bool:
        accepts = self.target.accepts
        if accepts is not None and not accepts(change.key, change.data):
            return False
        if self.buffer is not None:
            self.buffer.append(change)
            return False
        seq = change.seq
        if seq is not None:
            # The snapshot was read on another Redis connection than the hub's, so a
            # change it already contains can reach the hub after the sync finished.
            # One pub/sub connection delivers in publish order, so seq only grows here:
            # anything not newer than what the client has is such a straggler.
            if seq <= self.last_seq:
                return False
            self.last_seq = seq
        self.conn.enqueue(self.head + change.tail,
                          (self, change.key) if self.conflated else None,
                          change.ts, self.stream)
        return True

    def send_replayed(self, change: frames.Change) -> None:
        accepts = self.target.accepts
        if accepts is not None and not accepts(change.key, change.data):
            return
        if change.seq is not None:
            if change.seq <= self.last_seq:
                return
            self.last_seq = change.seq
        self.conn.enqueue(self.replay_head + change.tail,
                          (self, change.key) if self.conflated else None, None, self.stream)


class _Route:
    """The subscriptions of one channel (or one legacy pattern) and its hub listener."""

    def __init__(self, name: str, legacy: bool, counters: StreamCounters) -> None:
        self.name = name
        self.legacy = legacy
        self.subs: set[Subscription] = set()
        self.ready: asyncio.Future[None] | None = None
        self.counters = counters

    def on_message(self, channel: str, data: bytes) -> None:
        try:
            change = (frames.legacy_ticker(channel, data) if self.legacy
                      else frames.parse_change(data))
        except (ValueError, KeyError, TypeError):
            log.warning("ignored malformed message on %s", channel)
            return
        if change.nonfinite and self.subs:
            self.counters.nonfinite(next(iter(self.subs)).stream).inc(change.nonfinite)
        delivered = 0
        for sub in tuple(self.subs):
            delivered += sub.deliver(change)
        if delivered:
            stream = next(iter(self.subs)).stream if self.subs else "unknown"
            self.counters.delivered(stream).inc(delivered)


class Fanout:
    def __init__(self, hub: Hub, metrics: Metrics, counters: StreamCounters | None = None) -> None:
        self.hub = hub
        self.metrics = metrics
        self.counters = counters or StreamCounters(metrics)
        self._routes: dict[str, _Route] = {}

    @property
    def channel_count(self) -> int:
        return len(self._routes)

    async def add(self, name: str, sub: Subscription, pattern: bool = False) -> None:
        """Attach ``sub``; returns once Redis confirmed the channel is subscribed."""
        rkey = ("p:" if pattern else "c:") + name
        route = self._routes.get(rkey)
        if route is not None:
            route.subs.add(sub)
            if route.ready is not None:
                await asyncio.shield(route.ready)
            return
        route = self._routes[rkey] = _Route(name, pattern, self.counters)
        route.subs.add(sub)
        ready = route.ready = asyncio.get_running_loop().create_future()
        try:
            if pattern:
                await self.hub.psubscribe(name, route.on_message)
            else:
                await self.hub.subscribe(name, route.on_message)
        except BaseException as exc:
            if self._routes.get(rkey) is route:
                del self._routes[rkey]
            ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            ready.exception()  # retrieved: waiters get it through their own await
            raise
        ready.set_result(None)
        route.ready = None
        if not route.subs:  # everyone left while the SUBSCRIBE was in flight
            await self.remove(name, sub, pattern)

    async def remove(self, name: str, sub: Subscription, pattern: bool = False) -> None:
        rkey = ("p:" if pattern else "c:") + name
        route = self._routes.get(rkey)
        if route is None:
            return
        route.subs.discard(sub)
        if route.subs or route.ready is not None:
            return
        del self._routes[rkey]
        if pattern:
            await self.hub.punsubscribe(name, route.on_message)
        else:
            await self.hub.unsubscribe(name, route.on_message)
