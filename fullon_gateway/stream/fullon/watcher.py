"""Learn of every fullon write without polling, and hand the keys to the sequencer.

- Tickers: fullon publishes each one on ``ticker_updates:{exchange}:{symbol}``; the
  watcher PSUBSCRIBEs that (the channel names the field, so the step reads one field).
- Everything else is only written, so the watcher uses Redis keyspace notifications:
  ``__keyspace@{db}__:{key}`` for the streamed keys (sources.WATCHED_PATTERNS), and the
  key events ``hdel``/``del``/``expired``/``evicted`` for removed tickers.
  Notifications are off by default in Redis. With ``keyspace_events: configure`` the
  watcher turns on the flags it needs with ``CONFIG SET notify-keyspace-events``,
  merged with those already set; where CONFIG is refused (managed Redis) /health says
  ``degraded`` and gives the exact redis.conf line (docs/operations.md).
- Each (re)connect, once Redis confirmed the subscriptions, the watcher rescans every
  streamed key: what was written while no watcher listened is sequenced then.

The notifications arrive on the hub's connection (hub.py): one pub/sub connection per
process, whose reconnects and liveness pings the hub handles; never a task per key or
socket. Notifications that arrive together are batched into one sequencer step, and a
key named twice in a batch is read once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.exceptions import RedisError, ResponseError

from fullon_gateway.stream.fullon import sources
from fullon_gateway.stream.fullon.sequencer import DIGEST_PREFIX, Sequencer
from fullon_gateway.stream.fullon.sources import Job
from fullon_gateway.stream.hub import Channel, Hub
from fullon_gateway.stream.names import glob_escape

log = logging.getLogger(__name__)

# Sequencer steps one process keeps in flight (see Watcher._kick).
STEPS_IN_FLIGHT = 2

# K keyspace, E keyevent, g generic (del, expire), $ strings (SETEX), l lists, h hashes,
# x expired, e evicted.
NEEDED_FLAGS = "KEg$lhxe"
_ALIAS_A = "g$lshzxetd"  # what 'A' stands for


def merged_flags(current: str, needed: str = NEEDED_FLAGS) -> str:
    """``current`` plus whatever of ``needed`` it lacks ('A' counts as its classes)."""
    return current + missing_flags(current, needed)


def missing_flags(current: str, needed: str = NEEDED_FLAGS) -> str:
    have = set(current.replace("A", _ALIAS_A))
    return "".join(c for c in needed if c not in have)


class Watcher:
    def __init__(self, hub: Hub, redis_url: str, redis: aioredis.Redis, prefix: str = "",
                 history_len: int = 1000, mode: str = "configure") -> None:
        self.hub = hub
        self.redis = redis
        self.prefix = prefix
        self.mode = mode  # configure | check | off (keyspace part only)
        self.db = int(parse_url(redis_url).get("db", 0) or 0)
        self.sequencer = Sequencer(redis, prefix, history_len)
        # Jobs are deduplicated, so this holds at most one entry per streamed key (or
        # ticker field) whatever the write rate: it needs no bound of its own.
        self._pending: dict[Job, None] = {}
        self._steps: set[asyncio.Task[None]] = set()  # sequencer steps in flight
        self._task: asyncio.Task[None] | None = None
        self._rescan: asyncio.Task[None] | None = None
        self._subscribed = False  # every subscription confirmed once
        self.rescans = 0  # completed rescans
        self.flags = ""  # notify-keyspace-events as last read
        self.notifications = "off" if mode == "off" else "unknown"
        self._ready = asyncio.Event()
        self._subscribing = asyncio.Event()  # set once the subscriptions were confirmed
        self._channels = self._subscriptions()
        self._space_len = len(f"__keyspace@{self.db}__:") + len(prefix)
        self._tickers_prefix = (prefix + "tickers:").encode()

    @property
    def connected(self) -> bool:
        return self._subscribed and self.hub.connected

    # -- status -------------------------------------------------------------------------
    @property
    def redis_conf_line(self) -> str:
        return f"notify-keyspace-events {merged_flags(self.flags)}"

    def status(self) -> dict[str, Any]:
        """For /health: ``ok`` False when fullon writes other than tickers cannot stream."""
        ok = self.connected and self.notifications in ("configured", "present", "off")
        out: dict[str, Any] = {"ok": ok, "watching": self.connected,
                               "notifications": self.notifications,
                               "sequenced": self.sequencer.sequenced, "rescans": self.rescans}
        if self.notifications in ("refused", "missing"):
            out["fix"] = f"add to redis.conf: {self.redis_conf_line}"
            out["missing_flags"] = missing_flags(self.flags)
        return out

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self, timeout: float = 2.0) -> None:
        """Start watching; returns once Redis confirmed the subscriptions (or after
        ``timeout`` with Redis not answering: the hub keeps trying in the background)."""
        self.hub.on_reconnect(self._resubscribed)
        self.hub.after_batch(self._kick)
        self._task = asyncio.create_task(self._begin(), name="fullon-watcher")
        waiter = asyncio.ensure_future(self._subscribing.wait())
        await asyncio.wait({self._task, waiter}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def stop(self) -> None:
        self._subscribed = False  # first: no step starts while the others are awaited
        tasks = [t for t in (self._task, self._rescan, *self._steps) if t is not None]
        for task in tasks:
            task.cancel()
        # Bounded: shutdown must not wait on a Redis that stopped answering.
        await asyncio.wait(tasks, timeout=2.0) if tasks else None
        for channel in self._channels:
            await self.hub.unlisten(channel)
        self._subscribed = False

    async def ready(self, timeout: float = 10.0) -> None:
        """Wait for the first completed rescan (subscribed, and what was there read)."""
        async with asyncio.timeout(timeout):
            await self._ready.wait()

    # -- notifications config ---------------------------------------------------------
    async def _configure(self) -> None:
        if self.mode == "off":
            return
        try:
            got = await self.redis.config_get("notify-keyspace-events")
            self.flags = str(next(iter(got.values()), "") or "")
        except ResponseError:
            self.flags = ""
            self.notifications = "refused" if self.mode == "configure" else "missing"
            log.warning("CONFIG GET refused; fullon writes other than tickers will not "
                        "stream unless redis.conf has: %s", self.redis_conf_line)
            return
        if not missing_flags(self.flags):
            self.notifications = "present"
            return
        if self.mode != "configure":
            self.notifications = "missing"
            return
        wanted = merged_flags(self.flags)
        try:
            await self.redis.config_set("notify-keyspace-events", wanted)
        except ResponseError as exc:
            self.notifications = "refused"
            log.warning("CONFIG SET notify-keyspace-events refused (%s); add to redis.conf: "
                        "%s", exc, self.redis_conf_line)
            return
        log.info("turned on keyspace notifications: %s (was %r)", wanted, self.flags)
        self.flags = wanted
        self.notifications = "configured"

    # -- the listeners ------------------------------------------------------------------
    def _subscriptions(self) -> dict[Channel, Any]:
        """What the watcher listens to -> the listener that turns a message into a job."""
        subs: dict[Channel, Any] = {Channel("ticker_updates:*", pattern=True): self._on_ticker}
        if self.mode != "off":
            space = f"__keyspace@{self.db}__:" + glob_escape(self.prefix)
            for pattern in sources.WATCHED_PATTERNS:
                subs[Channel(space + pattern, pattern=True, raw=True)] = self._on_space
            for event in sources.REMOVAL_EVENTS:
                subs[Channel(f"__keyevent@{self.db}__:{event}", raw=True)] = self._on_event
        return subs

    async def _begin(self) -> None:
        # The listeners only record a job: no pacing after their messages.
        await asyncio.gather(*(self.hub.listen(channel, listener, pace=False)
                               for channel, listener in self._channels.items()))
        self._subscribed = True
        self._subscribing.set()
        self._kick()  # what arrived before the last confirmation
        await self._resubscribed()

    async def _resubscribed(self) -> None:
        """Every later write is now notified: (re)configure, then rescan what came
        before. Runs after the first subscription and after each hub reconnect."""
        if not self._subscribed:
            return  # _begin's own listen confirms, then calls this
        try:
            await self._configure()
        except (RedisError, OSError) as exc:
            log.warning("fullon watcher could not read notify-keyspace-events: %r", exc)
        if self._rescan is not None and not self._rescan.done():
            self._rescan.cancel()  # a rescan from before the drop: start over
        self._rescan = asyncio.create_task(self.rescan(), name="fullon-rescan")

    def _on_ticker(self, channel: str, _data: bytes) -> None:
        exchange, _, symbol = channel[len("ticker_updates:"):].partition(":")
        if exchange and symbol:
            self._want(sources.ticker_job(exchange, symbol))

    def _on_space(self, channel: str, _data: bytes) -> None:
        job = sources.job_for(channel[self._space_len:])
        if job is not None:
            self._want(job)

    def _on_event(self, _channel: str, key: bytes) -> None:
        if key.startswith(self._tickers_prefix):
            job = sources.job_for(key[len(self.prefix):].decode())
            if job is not None:
                self._want(job)

    # -- batching -----------------------------------------------------------------------
    def _want(self, job: Job) -> None:
        self._pending[job] = None

    def _kick(self) -> None:
        """After the hub dispatched a socket read: one step for all it brought, at once
        while fewer than STEPS_IN_FLIGHT are running; otherwise what arrives waits and
        goes in the next step when one finishes. A step compares state, so a write
        that waits can be conflated with a newer one of the same value: steps sent at
        once keep that rare (a key written every ms is stepped before its next write),
        and the bound keeps batches large when the writes outrun Redis."""
        while self._pending and self._subscribed and len(self._steps) < STEPS_IN_FLIGHT:
            jobs = list(self._pending)
            self._pending.clear()
            step = asyncio.get_running_loop().create_task(self._step(jobs))
            self._steps.add(step)
            step.add_done_callback(self._stepped)

    def _stepped(self, step: asyncio.Task[None]) -> None:
        self._steps.discard(step)
        if not step.cancelled():
            self._kick()

    async def _step(self, jobs: list[Job]) -> None:
        try:
            await self.sequencer.run(jobs)
        except (RedisError, OSError) as exc:
            # Another process's step, or the rescan after the reconnect, catches it.
            log.warning("fullon sequencer step failed (%d keys): %r", len(jobs), exc)
        except Exception:
            log.exception("fullon sequencer step failed (%d keys)", len(jobs))

    async def rescan(self) -> None:
        """Sequence whatever differs from the digests in every streamed key."""
        p, esc = self.prefix, glob_escape(self.prefix)
        seen: set[str] = set()
        jobs: list[Job] = []
        try:
            for pattern in sources.SCANNED_PATTERNS:
                async for raw in self.redis.scan_iter(match=esc + pattern, count=1000):
                    key = raw.decode()[len(p):]
                    job = sources.job_for(key)
                    if job is not None and key not in seen:
                        seen.add(key)
                        jobs.append(job)
            # Digests whose key is gone: removed while nobody watched.
            async for raw in self.redis.scan_iter(match=esc + DIGEST_PREFIX + "*", count=1000):
                key = raw.decode()[len(p) + len(DIGEST_PREFIX):]
                job = sources.job_for(key)
                if job is not None and key not in seen:
                    seen.add(key)
                    jobs.append(job)
            await self.sequencer.run(jobs, rescan=True)
            await self.sequencer.mark_primed()
            self.rescans += 1
            self._ready.set()
        except (RedisError, OSError) as exc:
            log.warning("fullon rescan failed: %r", exc)

