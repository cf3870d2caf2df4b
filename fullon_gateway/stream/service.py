"""The streams of one gateway process: subscribe, sync (snapshot or replay), resync.

Gapless subscribe, the invariant everything here protects:
1. attach the subscription to its channels with a buffer (Redis confirmed the
   SUBSCRIBE, so every later publish reaches the buffer);
2. read the current state and the global seq ``G`` in one MULTI (atomic with the
   publisher's script): everything published up to ``G`` is in what we read, and
   everything published after it has a seq > ``G`` and is in the buffer;
3. queue ack + snapshot (or the replay), then the buffered changes with seq > ``G``,
   and switch the subscription to live - all without awaiting in between;
4. the snapshot came over another connection than the hub's, so a change it already
   holds may still be on its way to the hub: live delivery drops any seq not above
   the last one the client has (the hub's one connection delivers in seq order).
The same routine resyncs every subscription after the hub reconnected to Redis, and
a subscription whose units changed because ownership changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from fullon_gateway.auth.identity import Caller
from fullon_gateway.auth.service import AuthFailure, AuthService
from fullon_gateway.fullon.reads import FullonReads
from fullon_gateway.metrics import Metrics
from fullon_gateway.settings import Settings
from fullon_gateway.stream import frames, names
from fullon_gateway.stream.access import Ownership
from fullon_gateway.stream.connection import GOING_AWAY, Connection
from fullon_gateway.stream.counters import StreamCounters
from fullon_gateway.stream.fanout import Fanout, Subscription
from fullon_gateway.stream.hub import Hub
from fullon_gateway.stream.streams import (
    PRIVATE,
    AccessError,
    Tally,
    Target,
    build_snapshot,
    queue_snapshot,
    resolve,
)

log = logging.getLogger(__name__)

_RESYNC_ATTEMPTS = 6


class StreamService:
    def __init__(self, settings: Settings, redis: aioredis.Redis, hub: Hub,
                 db: asyncpg.Pool, metrics: Metrics) -> None:
        self.settings = settings
        self.redis = redis
        self.prefix = settings.redis_prefix
        self.metrics = metrics
        self.counters = StreamCounters(metrics)  # shared by the fan-out and every socket
        self.fanout = Fanout(hub, metrics, self.counters)
        self.ownership = Ownership(db, settings.auth_cache_ttl)
        self.connections: set[Connection] = set()
        self.fullon_reads = FullonReads(redis, settings.redis_prefix)
        self._tasks: set[asyncio.Task[Any]] = set()
        # One ownership refresh at a time: two announcements in a row (the local one and
        # its echo over Redis, say) must not both re-attach the same subscription.
        self._refresh_lock = asyncio.Lock()

    # -- reading state --------------------------------------------------------------
    async def read_snapshot(self, t: Target) -> tuple[int, dict[str, Any]]:
        """(global seq G, snapshot result) read atomically."""
        p = self.prefix
        tally = Tally()
        if t.stream in ("process", "orders"):
            # Their key names are only known inside Redis: one read-only script each.
            if t.stream == "process":
                g, rows = await self.fullon_reads.processes()
            else:
                g, rows = await self.fullon_reads.orders(t.params["ex_ids"])
            result = build_snapshot(t, list(rows), tally)
        else:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.get(p + names.SEQ_COUNTER)
                queue_snapshot(pipe, t, p)
                res = await pipe.execute()
            g, result = int(res[0] or 0), build_snapshot(t, res[1:], tally)
        if tally.nonfinite:
            self.counters.nonfinite(t.stream).inc(tally.nonfinite)
        return g, result

    async def read_replay(self, t: Target, since: int) -> tuple[int, list[frames.Change]] | None:
        """(G, changes after ``since``) if history still covers the gap, else None."""
        p = self.prefix
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(p + names.SEQ_COUNTER)
            pipe.get(p + names.SEQ_EPOCH)
            for unit in t.units:
                pipe.xrange(p + names.history_key(unit), min=f"{since + 1}-0")
            res = await pipe.execute()
        g, epoch = int(res[0] or 0), int(res[1] or 0)
        # since > g: invented, or from before Redis lost its data while nothing has been
        # published since; since < epoch: from before the counter restarted, so history
        # written before the restart may be gone.
        if since > g or since < epoch:
            return None
        changes: list[frames.Change] = []
        for entries in res[2:]:
            # No entry after since: nothing happened in that unit (a history is never
            # trimmed to nothing). Otherwise the first entry's prev must reach back.
            if entries:
                first = frames.parse_change(entries[0][1][b"m"])
                if first.prev > since:
                    return None  # trimmed: changes between since and first are gone
                changes.append(first)
                changes.extend(frames.parse_change(e[1][b"m"]) for e in entries[1:])
        changes.sort(key=lambda c: c.seq or 0)
        return g, changes

    # -- subscriptions --------------------------------------------------------------
    async def _attach(self, sub: Subscription) -> None:
        t = sub.target
        for channel in t.channels:
            await self.fanout.add(channel, sub)
        for pattern in t.patterns:
            await self.fanout.add(pattern, sub, pattern=True)

    async def _detach(self, sub: Subscription) -> None:
        t = sub.target
        for channel in t.channels:
            await self.fanout.remove(channel, sub)
        for pattern in t.patterns:
            await self.fanout.remove(pattern, sub, pattern=True)

    async def sync(self, sub: Subscription, since: int | None,
                   ack_result: dict[str, Any] | None = None, action: str = "") -> None:
        """Steps 2 and 3 of the invariant above (the subscription is attached)."""
        t = sub.target
        if sub.buffer is None:
            sub.buffer = []
        try:
            replay = await self.read_replay(t, since) if since is not None else None
            if replay is not None and not _replay_fits(sub, replay, ack_result is not None):
                # More than the socket's queue has room for would close it 1013 on every
                # resume: treat the gap as too old and start afresh (recovered: false).
                replay = None
            snap = None if replay is not None else await self.read_snapshot(t)
        except BaseException:
            sub.buffer = None
            raise
        conn = sub.conn
        if not sub.active or conn.closing:
            sub.buffer = None
            return
        # -- from here on, no await: the order on the queue is the order on the wire --
        recovered = None if since is None else replay is not None
        if ack_result is not None:
            if recovered is not None:
                ack_result["recovered"] = recovered
            conn.enqueue(frames.reply(sub.request_id, action, ack_result))
        if replay is not None:
            g, changes = replay
            for change in changes:
                sub.send_replayed(change)
        else:
            assert snap is not None
            g, result = snap
            # After Redis lost its data the counter is gone (g = 0) until the next
            # publish restarts it from the clock; never show the client a smaller seq.
            shown = max(g, sub.last_seq)
            conn.enqueue(frames.snapshot(t.stream, sub.request_id, t.stream_key, shown, result,
                                         recovered), stream=t.stream)
        sub.last_seq = max(sub.last_seq, g)
        buffered, sub.buffer = sub.buffer, None
        for change in buffered:
            if change.seq is None or change.seq > g:
                sub.deliver(change)

    async def subscribe(self, conn: Connection, stream: str, params: dict[str, Any],
                        request_id: Any, action: str) -> None:
        """Resolve, attach, sync; the ack and the snapshot/replay go on conn's queue."""
        assert conn.caller is not None
        since = params.get("since")
        target = await resolve(stream, params, conn.caller, self.ownership)
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
        self.metrics.subscriptions.labels(stream).inc()
        try:
            await self._attach(sub)
            await self.sync(sub, since, ack_result={"stream_key": target.stream_key},
                            action=action)
        except BaseException:
            await self.unsubscribe(conn, target.stream_key)
            raise

    async def unsubscribe(self, conn: Connection, stream_key: str) -> bool:
        sub = conn.subs.pop(stream_key, None)
        if sub is None:
            return False
        sub.active = False
        self.metrics.subscriptions.labels(sub.stream).dec()
        await self._detach(sub)
        return True

    async def drop_connection(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for key in list(conn.subs):
            await self.unsubscribe(conn, key)

    async def read_once(self, stream: str, params: dict[str, Any], caller: Caller) -> Any:
        """The current state without subscribing (the fullon ``get_*`` actions)."""
        target = await resolve(stream, params, caller, self.ownership)
        _g, result = await self.read_snapshot(target)
        return result

    # -- resync -------------------------------------------------------------------------
    async def resync_all(self) -> None:
        """After the hub reconnected: every subscription may have missed changes."""
        self.ownership.invalidate(None)  # announcements may have been lost meanwhile
        subs = [s for c in list(self.connections) for s in list(c.subs.values())
                if s.active and s.buffer is None]
        sem = asyncio.Semaphore(32)

        async def one(sub: Subscription) -> None:
            # The shared client's pooled connections died with the old server: the first
            # command on each may fail before the pool reconnects, so retry a few times.
            async with sem:
                for attempt in range(_RESYNC_ATTEMPTS):
                    if not sub.active:
                        return
                    try:
                        await self.sync(sub, sub.last_seq if sub.last_seq else None)
                        return
                    except (aioredis.RedisError, OSError) as exc:
                        log.warning("resync of %s failed (attempt %d): %r",
                                    sub.target.stream_key, attempt + 1, exc)
                        await asyncio.sleep(0.1 * 2 ** attempt)

        await asyncio.gather(*(one(s) for s in subs))

    def on_revocation(self, kind: str, ident: Any) -> None:
        """AuthService listener: ownership changes re-check private subscriptions."""
        if kind != "ownership":
            return
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
            await self._refresh_access(user_id)

    async def _refresh_access(self, user_id: int) -> None:
        for conn in list(self.connections):
            caller = conn.caller
            if caller is None or not (caller.user_id == user_id or caller.is_admin):
                continue
            for key, sub in list(conn.subs.items()):
                if sub.stream not in PRIVATE or not sub.active:
                    continue
                t = sub.target
                try:
                    fresh = await resolve(t.stream, t.request, caller, self.ownership)
                except AccessError:
                    await self.unsubscribe(conn, key)
                    conn.enqueue(frames.notice("subscription_ended", stream_key=key,
                                               reason="access revoked"))
                    continue
                if fresh.units == t.units:
                    continue
                sub.buffer = []
                try:
                    await self._detach(sub)
                    sub.target = fresh
                    await self._attach(sub)
                    await self.sync(sub, None)
                except (aioredis.RedisError, OSError, TimeoutError) as exc:
                    # Never leave a subscription buffering forever: end it; the client
                    # subscribes again.
                    log.warning("re-resolving %s failed: %r", key, exc)
                    await self.unsubscribe(conn, key)
                    conn.enqueue(frames.notice("subscription_ended", stream_key=key,
                                               reason="resync failed"))

    async def revalidate_forever(self, auth: AuthService) -> None:
        """Re-check each socket's credential about every ``auth_cache_ttl`` seconds.

        Revocations normally arrive at once over Redis (app.py closes the sockets); this
        sweep is the safety net for an announcement lost while Redis was unreachable.
        Only sockets not checked for a cache TTL are re-checked, a few per sweep, so
        the cost stays a couple of cached lookups per socket per TTL.
        """
        interval = max(self.settings.ws_revocation_check, 0.05)
        ttl = self.settings.auth_cache_ttl
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.closing or conn.token is None or now - conn.checked_at < ttl:
                    continue
                conn.checked_at = now
                try:
                    caller = await auth.authenticate(conn.token)
                except AuthFailure as exc:
                    conn.close_soon(1008, exc.reason)
                    continue
                except Exception as exc:  # a dependency down: keep the socket, retry later
                    log.debug("revalidation skipped: %r", exc)
                    continue
                if conn.caller is not None and caller.user_id == conn.caller.user_id:
                    conn.set_caller(caller)

    async def heartbeat_forever(self) -> None:
        """One sweep over every socket, not a timer per socket: ping a socket silent for
        ``ws_heartbeat`` seconds, close one silent for twice that (1001 heartbeat timeout).

        Any frame the client sends counts, a pong included (the handler reads with
        ``autoping=False`` so pongs reach it; aiohttp's own heartbeat would only wait
        half a period for the pong).
        """
        beat = self.settings.ws_heartbeat
        while True:
            await asyncio.sleep(beat / 4)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.closing:
                    continue
                silent = now - conn.last_seen
                if silent >= 2 * beat:
                    conn.close_soon(GOING_AWAY, "heartbeat timeout")
                elif silent >= beat and now - conn.pinged_at >= beat:
                    conn.ping()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)



def _replay_fits(sub: Subscription, replay: tuple[int, list[frames.Change]],
                 with_ack: bool) -> bool:
    """Whether the replay plus the changes buffered meanwhile fit in the socket's queue."""
    g, changes = replay
    accepts = sub.target.accepts
    wanted = [c for c in changes if (c.seq is None or c.seq > sub.last_seq)
              and (accepts is None or accepts(c.key, c.data))]
    wanted.extend(c for c in sub.buffer or () if c.seq is None or c.seq > g)
    # Market data conflates on the queue: one slot per key at most.
    needed = len({c.key for c in wanted}) if sub.conflated else len(wanted)
    conn = sub.conn
    return needed + with_ack <= conn.queue_limit - conn.queued


async def streams_ctx(app: Any) -> Any:
    """cleanup_ctx: the process's StreamService, wired to the hub and to revocations."""
    from fullon_gateway.keys import AUTH, DB, HUB, METRICS, REDIS, SETTINGS, STREAMS

    service = StreamService(app[SETTINGS], app[REDIS], app[HUB], app[DB], app[METRICS])
    app[STREAMS] = service
    app[HUB].on_reconnect(service.resync_all)
    app[AUTH].add_revocation_listener(service.on_revocation)
    sweepers = [asyncio.create_task(service.revalidate_forever(app[AUTH]),
                                    name="ws-revalidation"),
                asyncio.create_task(service.heartbeat_forever(), name="ws-heartbeat")]
    yield
    for sweeper in sweepers:
        sweeper.cancel()
    for sweeper in sweepers:
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    await service.stop()
