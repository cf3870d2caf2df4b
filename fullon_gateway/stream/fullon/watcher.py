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

One watcher (one pub/sub connection) per process, never a task per key or socket.
Notifications that arrive together are batched into one sequencer step, and a key
named twice in a batch is read once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from fullon_gateway.stream.fullon import sources
from fullon_gateway.stream.fullon.sequencer import DIGEST_PREFIX, Sequencer
from fullon_gateway.stream.fullon.sources import Job
from fullon_gateway.stream.names import glob_escape

log = logging.getLogger(__name__)

# K keyspace, E keyevent, g generic (del, expire), $ strings (SETEX), l lists, h hashes,
# x expired, e evicted.
NEEDED_FLAGS = "KEg$lhxe"
_ALIAS_A = "g$lshzxetd"  # what 'A' stands for
_IDLE_PING = 5.0
_BACKOFF_MAX = 5.0
_MAX_PENDING = 20_000  # past this the reader waits for the sequencer to catch up


def merged_flags(current: str, needed: str = NEEDED_FLAGS) -> str:
    """``current`` plus whatever of ``needed`` it lacks ('A' counts as its classes)."""
    return current + missing_flags(current, needed)


def missing_flags(current: str, needed: str = NEEDED_FLAGS) -> str:
    have = set(current.replace("A", _ALIAS_A))
    return "".join(c for c in needed if c not in have)


class Watcher:
    def __init__(self, redis_url: str, redis: aioredis.Redis, prefix: str = "",
                 history_len: int = 1000, mode: str = "configure") -> None:
        self.url = redis_url
        self.redis = redis
        self.prefix = prefix
        self.mode = mode  # configure | check | off (keyspace part only)
        self.db = int(parse_url(redis_url).get("db", 0) or 0)
        self.sequencer = Sequencer(redis, prefix, history_len)
        self._pending: dict[Job, None] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._rescan: asyncio.Task[None] | None = None
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self.connected = False
        self.rescans = 0  # completed rescans
        self.flags = ""  # notify-keyspace-events as last read
        self.notifications = "off" if mode == "off" else "unknown"
        self._patterns: dict[bytes, str] = {}
        self._ready = asyncio.Event()
        self._stopping = False
        self._subscribing = asyncio.Event()  # set once the subscriptions were sent

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
        """Start watching; returns once the subscriptions went out (or after ``timeout``
        with Redis not answering: the watcher keeps retrying in the background)."""
        self._task = asyncio.create_task(self._run(), name="fullon-watcher")
        waiter = asyncio.ensure_future(self._subscribing.wait())
        await asyncio.wait({self._task, waiter}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def stop(self) -> None:
        self._stopping = True  # a cancellation turned into an error must not loop on
        tasks = [t for t in (self._task, self._rescan, self._flusher) if t is not None]
        for task in tasks:
            task.cancel()
        # Bounded: shutdown must not wait on a Redis that stopped answering.
        await asyncio.wait(tasks, timeout=2.0) if tasks else None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._close()

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

    # -- the reader ---------------------------------------------------------------------
    def _subscriptions(self) -> dict[str, str]:
        """Pattern -> what it carries."""
        esc = glob_escape(self.prefix)
        subs = {f"{esc}ticker_updates:*": "ticker"}
        if self.mode != "off":
            space = f"__keyspace@{self.db}__:"
            for pattern in sources.WATCHED_PATTERNS:
                subs[space + esc + pattern] = "space"
            for event in sources.REMOVAL_EVENTS:
                subs[f"__keyevent@{self.db}__:{event}"] = "event"
        return subs

    async def _connect(self) -> int:
        self._client = aioredis.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0),
                                               socket_connect_timeout=2.0)
        self._pubsub = self._client.pubsub()
        subs = self._subscriptions()
        self._patterns = {k.encode(): v for k, v in subs.items()}
        await self._pubsub.psubscribe(*subs)
        return len(subs)

    async def _close(self) -> None:
        self.connected = False
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
        self._pubsub = self._client = None

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                await self._configure()
                expected = await self._connect()
                self._subscribing.set()
                backoff = 0.1
                await self._read_forever(expected)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._stopping:
                    return
                if self.connected:
                    log.warning("fullon watcher lost Redis: %r", exc)
                await self._close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _read_forever(self, expected: int) -> None:
        unconfirmed = expected
        idle = 0
        space_len = len(f"__keyspace@{self.db}__:") + len(self.prefix)
        plen = len(self.prefix)
        ticker_len = plen + len("ticker_updates:")
        tickers_prefix = (self.prefix + "tickers:").encode()
        while True:
            msg = await self._pubsub.get_message(timeout=_IDLE_PING)
            if msg is None:
                idle += 1
                if idle > 2:
                    raise ConnectionError("fullon watcher: redis silent")
                await self._pubsub.ping()
                continue
            idle = 0
            kind = msg["type"]
            if kind == "pmessage":
                carries = self._patterns.get(msg["pattern"])
                channel: bytes = msg["channel"]
                job: Job | None = None
                if carries == "ticker":
                    exchange, _, symbol = channel[ticker_len:].decode().partition(":")
                    if exchange and symbol:
                        job = sources.ticker_job(exchange, symbol)
                elif carries == "space":
                    job = sources.job_for(channel[space_len:].decode())
                elif carries == "event":
                    key: bytes = msg["data"]
                    if key.startswith(tickers_prefix):
                        job = sources.job_for(key[plen:].decode())
                if job is not None:
                    self._want(job)
                    if len(self._pending) > _MAX_PENDING:
                        await self._flusher_done()
            elif kind == "psubscribe":
                unconfirmed -= 1
                if unconfirmed == 0:
                    self.connected = True
                    # Every later write is now notified: what came before is rescanned.
                    self._rescan = asyncio.create_task(self.rescan(), name="fullon-rescan")

    async def _flusher_done(self) -> None:
        flusher = self._flusher
        if flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(flusher)

    # -- batching -----------------------------------------------------------------------
    def _want(self, job: Job) -> None:
        self._pending[job] = None
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            jobs = list(self._pending)
            self._pending.clear()
            try:
                await self.sequencer.run(jobs)
            except (RedisError, OSError) as exc:
                # Another process's step, or the rescan after the reconnect, catches it.
                log.warning("fullon sequencer step failed (%d keys): %r", len(jobs), exc)
                return

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

