"""The streams of one gateway process: subscribe, sync (snapshot or replay), resync.

Gapless subscribe, the invariant everything here protects:
1. attach the subscription to its channels with a buffer (Redis confirmed the
   SUBSCRIBE, so every later publish reaches the buffer);
2. read the current state and the global seq ``G`` in one MULTI (atomic with the
   publisher's script): everything published up to ``G`` is in what we read, and
   everything published after it has a seq > ``G`` and is in the buffer - provided
   the hub listened on every channel throughout: the read waits until it does, and
   is done again when the hub lost Redis meanwhile;
3. ``fanout.go_live``: ack + snapshot (or the replay), then the buffered changes with
   seq > ``G``, and the switch to live - one plain function, so nothing in between;
4. the snapshot came over another connection than the hub's, so a change it already
   holds may still be on its way to the hub: live delivery drops any seq not above
   the last one the client has (the hub's one connection delivers in seq order).
The same routine resyncs every subscription after the hub reconnected to Redis, and
a subscription whose units changed because ownership changed. Revocations reach the
sockets here too (``on_revocation``, the process's one revocation listener).
Reading a replay from the histories is history.py; reading snapshots, snapshots.py.

Over 300 lines on purpose: subscribe, the resync after a reconnect and the re-resolve
after an ownership change are three entries into the one sync above, and the
buffer/``resync`` flags they share are only safe read side by side.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from fullon_gateway.auth.identity import Caller
from fullon_gateway.auth.revocation import Revocation
from fullon_gateway.metrics import Metrics
from fullon_gateway.settings import Settings
from fullon_gateway.stream import frames, history
from fullon_gateway.stream.access import Ownership
from fullon_gateway.stream.connection import Connection
from fullon_gateway.stream.counters import StreamCounters
from fullon_gateway.stream.fanout import Ack, Fanout, Replay, Snapshot, Subscription, go_live
from fullon_gateway.stream.hub import Hub
from fullon_gateway.stream.kinds import (
    KINDS,
    AccessError,
    Process,
    StreamKind,
    Tally,
    Target,
    resolve,
)
from fullon_gateway.stream.registry import CLOSE_REASONS, POLICY_VIOLATION, SocketRegistry
from fullon_gateway.stream.snapshots import SnapshotReader

log = logging.getLogger(__name__)

STALE_AFTER = 300.0  # seconds without a heartbeat before a process counts as stale
_RESYNC_ATTEMPTS = 8
_RESYNC_BACKOFF_MAX = 2.0


class StreamService:
    def __init__(self, settings: Settings, redis: aioredis.Redis, hub: Hub,
                 db: asyncpg.Pool, metrics: Metrics, sockets: SocketRegistry) -> None:
        self.settings = settings
        self.redis = redis
        self.prefix = settings.redis_prefix
        self.metrics = metrics
        self.counters = StreamCounters(metrics)  # shared by the fan-out and every socket
        self.fanout = Fanout(hub, self.counters)
        # A quarter of the pool at most for snapshot batches: REST, logins and
        # publishes keep the rest, so a storm cannot starve them or itself.
        self.snapshots = SnapshotReader(redis, self.prefix,
                                        flights=max(1, settings.redis_pool_size // 4))
        self.ownership = Ownership(db, settings.auth_cache_ttl)
        self.sockets = sockets
        self._tasks: set[asyncio.Task[Any]] = set()
        # One ownership refresh at a time: two announcements in a row (the local one and
        # its echo over Redis, say) must not both re-attach the same subscription.
        self._refresh_lock = asyncio.Lock()

    # -- reading state --------------------------------------------------------------
    async def read_snapshot(self, t: Target) -> Snapshot:
        """(global seq G, snapshot result) read atomically."""
        tally = Tally()
        g, result = await self.snapshots.read(t, tally)
        if tally.nonfinite:  # fullon's NaN/Infinity, read as null
            self.counters.nonfinite(t.stream).inc(tally.nonfinite)
        return Snapshot(g, result)

    async def read_replay(self, t: Target, since: int) -> Replay | None:
        """(G, changes after ``since``) if history still covers the gap, else None."""
        return await history.read_replay(self.redis, self.prefix, t, since)

    async def _read_state(self, sub: Subscription, since: int | None,
                          with_ack: bool) -> Snapshot | Replay:
        """The replay after ``since`` when history covers it and it fits the socket's
        queue (``history.replay_fits``), else a fresh snapshot."""
        if since is not None:
            replay = await self.read_replay(sub.target, since)
            if replay is not None and history.replay_fits(sub, replay, with_ack):
                return replay
        return await self.read_snapshot(sub.target)

    # -- subscriptions --------------------------------------------------------------
    async def _hub_in_sync(self) -> int:
        """The hub's generation once it listens on every channel of its connection
        (TimeoutError, a retryable answer, after the fan-out's confirm timeout)."""
        hub = self.fanout.hub
        if not hub.in_sync:
            async with asyncio.timeout(self.fanout.confirm_timeout):
                await hub.wait_in_sync()
        return hub.generation

    async def sync(self, sub: Subscription, since: int | None, ack: Ack | None = None) -> None:
        """Steps 2 and 3 of the invariant above (the subscription is attached). A route
        confirmed before a loss attaches at once and Redis can answer reads before the
        hub is back (its backoff outlasts a restart), and nothing marks a subscription
        that is not live yet for the resync: so the read waits for the hub, and is
        done again if the hub lost Redis meanwhile (the hub sees a dead server's
        sockets close before a restarted one can answer a read)."""
        if sub.buffer is None:
            sub.buffer = []
        try:
            while True:
                generation = await self._hub_in_sync()
                state = await self._read_state(sub, since, ack is not None)
                if self.fanout.hub.generation == generation:
                    break
                sub.buffer = []  # what it holds came over the lost connection
        except BaseException:
            sub.buffer = None
            raise
        if not sub.active or sub.conn.closing:
            sub.buffer = None
            return
        recovered = None if since is None else isinstance(state, Replay)
        go_live(sub, state, ack, recovered)

    async def subscribe(self, conn: Connection, kind: StreamKind, filters: dict[str, Any],
                        request_id: Any, action: str) -> None:
        """Resolve, attach, sync; the ack and the snapshot/replay go on conn's queue."""
        assert conn.caller is not None
        since = filters.get("since")
        target = await resolve(kind, filters, conn.caller, self.ownership)
        if target.stream_key in conn.subs:
            conn.enqueue(frames.reply(request_id, action,
                                      {"stream_key": target.stream_key, "already": True}))
            return
        if len(conn.subs) >= self.settings.ws_max_subscriptions:
            raise AccessError("SUBSCRIPTION_LIMIT",
                              f"at most {self.settings.ws_max_subscriptions} subscriptions "
                              "per socket")
        sub = Subscription(conn, target, request_id)
        sub.buffer = []
        conn.subs[target.stream_key] = sub
        self.metrics.subscriptions.labels(kind.name).inc()
        try:
            await self.fanout.attach(sub)
            await self.sync(sub, since, Ack(request_id, action,
                                            {"stream_key": target.stream_key}))
        except BaseException:
            await self.unsubscribe(conn, target.stream_key)
            raise

    async def unsubscribe(self, conn: Connection, stream_key: str) -> bool:
        sub = conn.subs.pop(stream_key, None)
        if sub is None:
            return False
        sub.active = False
        self.metrics.subscriptions.labels(sub.stream).dec()
        await self.fanout.detach(sub)
        return True

    def register(self, conn: Connection) -> None:
        self.sockets.add(conn)
        self.metrics.sockets_open.inc()

    async def drop_connection(self, conn: Connection) -> None:
        if conn in self.sockets:
            self.sockets.discard(conn)
            self.metrics.sockets_open.dec()
        for key in list(conn.subs):
            await self.unsubscribe(conn, key)

    async def read_once(self, kind: StreamKind, filters: dict[str, Any], caller: Caller) -> Any:
        """The current state without subscribing (the fullon ``get_*`` actions)."""
        target = await resolve(kind, filters, caller, self.ownership)
        return (await self.read_snapshot(target)).result

    async def processes(self, process_type: str | None = None) -> list[dict[str, Any]]:
        """The process registry with each heartbeat's age and staleness (no access check:
        callers check for an admin)."""
        kind = KINDS["process"]
        assert isinstance(kind, Process)
        snap = await self.read_snapshot(kind.target(process_type))
        now = time.time()
        out = []
        for proc in snap.result["processes"]:
            age = None
            try:
                beat = dt.datetime.fromisoformat(str(proc.get("heartbeat")).replace("Z", "+00:00"))
                age = round(max(0.0, now - beat.timestamp()), 1)
            except ValueError:
                pass
            stale = age is None or age > STALE_AFTER
            out.append({**proc, "heartbeat_age_s": age, "stale": stale,
                        "status": "stale" if stale else proc.get("status", "unknown")})
        return out

    # -- resync -------------------------------------------------------------------------
    def on_hub_disconnect(self) -> None:
        """The hub lost Redis: from now on every live subscription may miss changes.

        Each one buffers from this instant (so nothing moves its ``last_seq``), and the
        resync after the reconnect resumes it from exactly the seq it had here, or
        gives it a fresh snapshot with ``recovered: false``. Synchronous: no message can
        be delivered live between the drop and this.
        """
        for conn in self.sockets:
            for sub in conn.subs.values():
                if sub.active and sub.buffer is None:
                    sub.buffer = []
                    sub.resync = True

    async def resync_all(self) -> None:
        """After the hub reconnected: resync every subscription marked at the drop."""
        self.ownership.invalidate(None)  # announcements may have been lost meanwhile
        generation = self.fanout.hub.generation  # the connection they resync against
        subs = [s for c in self.sockets for s in list(c.subs.values())
                if s.active and s.resync]
        sem = asyncio.Semaphore(32)

        async def one(sub: Subscription) -> None:
            async with sem:
                await self._resync(sub, generation)

        await asyncio.gather(*(one(s) for s in subs))

    async def _resync(self, sub: Subscription, generation: int) -> None:
        """Resume ``sub`` exactly from the seq it had at the drop, or re-snapshot it
        (``recovered: false``); after repeated failures end it with a notice. It never
        goes live with a gap: it buffers until one of those happened. When the hub
        loses Redis again meanwhile (``generation`` moved) it stops and stays marked:
        the resync after the next reconnect takes over."""
        since = sub.last_seq  # frozen since the drop: live changes only buffer
        hub = self.fanout.hub
        for attempt in range(_RESYNC_ATTEMPTS):
            if not sub.active or sub.conn.closing:
                sub.buffer, sub.resync = None, False
                return
            if hub.generation != generation:
                return
            try:
                # A subscription that had no change yet (seq 0) simply re-snapshots.
                state = await self._read_state(sub, since or None, False)
            except (aioredis.RedisError, OSError) as exc:
                log.warning("resync of %s failed (attempt %d): %r",
                            sub.target.stream_key, attempt + 1, exc)
                await asyncio.sleep(min(0.1 * 2 ** attempt, _RESYNC_BACKOFF_MAX))
                continue
            if not sub.active or sub.conn.closing:
                sub.buffer, sub.resync = None, False
                return
            if hub.generation != generation:
                return
            sub.resync = False
            go_live(sub, state, None, isinstance(state, Replay))
            return
        key = sub.target.stream_key
        log.warning("giving up resyncing %s: ending the subscription", key)
        sub.resync = False
        await self.unsubscribe(sub.conn, key)
        sub.conn.enqueue(frames.notice("subscription_ended", stream_key=key,
                                       reason="resync failed"))

    def on_revocation(self, kind: Revocation, ident: Any) -> None:
        """The AuthService revocation listener (from any process, over Redis): revoked
        credentials close their sockets; ownership changes re-check private ones."""
        reason = CLOSE_REASONS.get(kind)
        if reason is not None:
            for conn in self.sockets.affected_by(kind, ident):
                conn.close_soon(POLICY_VIOLATION, reason)
        elif kind is Revocation.OWNERSHIP:
            self.ownership.invalidate(ident)
            task = asyncio.get_running_loop().create_task(self.refresh_access(ident))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def refresh_access(self, user_id: int) -> None:
        """Re-resolve the private subscriptions of ``user_id`` (and of admins).

        A subscription whose named account/bot is no longer the caller's is ended
        (``subscription_ended``); an "all of mine" subscription whose set of units
        changed is re-attached and gets a fresh snapshot.
        """
        async with self._refresh_lock:
            for conn in self.sockets:
                caller = conn.caller
                if caller is not None and (caller.user_id == user_id or caller.is_admin):
                    await self._refresh_socket(conn, caller)

    async def _refresh_socket(self, conn: Connection, caller: Caller) -> None:
        for key, sub in list(conn.subs.items()):
            t = sub.target
            if not t.kind.private or not sub.active:
                continue
            try:
                fresh = await resolve(t.kind, t.request, caller, self.ownership)
            except AccessError:
                await self.unsubscribe(conn, key)
                conn.enqueue(frames.notice("subscription_ended", stream_key=key,
                                           reason="access revoked"))
                continue
            if fresh.units == t.units:
                continue
            sub.buffer = []
            try:
                await self.fanout.detach(sub)
                sub.target = fresh
                await self.fanout.attach(sub)
                await self.sync(sub, None)
            except (aioredis.RedisError, OSError, TimeoutError) as exc:
                # Never leave a subscription buffering forever: end it; the client
                # subscribes again.
                log.warning("re-resolving %s failed: %r", key, exc)
                await self.unsubscribe(conn, key)
                conn.enqueue(frames.notice("subscription_ended", stream_key=key,
                                           reason="resync failed"))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.snapshots.stop()

