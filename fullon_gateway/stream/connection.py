"""One WebSocket: a bounded outgoing queue drained by one writer task.

Nothing ever awaits a send on behalf of another socket: the fan-out calls
``enqueue`` (synchronous, O(1)) and this socket's writer sends when the socket can
take it. What happens when the client cannot keep up depends on the data:

- market data (tickers, ohlcv, process) is conflated: a newer value for the same key
  replaces the unsent older one (the old slot is blanked and the new one appended, so
  seq still only grows on the wire; blanked slots are compacted away once the queue
  holds twice ``ws_queue_limit`` slots);
- everything else is never dropped: once more than ``ws_queue_limit`` frames wait,
  the socket is closed 1013 ``slow consumer`` and the client resumes with ``since``.

With ``?batch=1`` the writer sends everything queued as one JSON array frame.

The direct write (docs/adr/ADR-007-direct-frame-write.md): when nothing is queued, the
writer is parked waiting for work and the transport's buffer is empty (the kernel
took everything written so far), ``enqueue`` writes the frame to the request's public
transport at once, with an RFC 6455 header built here (frames.ws_text_header), and
returns: a socket that keeps up costs no writer wake-up per delivery. Only frames
that would have been the next on the wire take it, so the order on the wire and
conflation (which only ever acts on queued frames) are exactly the queue's. It is
off for ``?batch=1`` (the writer coalesces what queues) and when permessage-deflate
was negotiated (aiohttp compresses large frames in an executor, so a direct write
could overtake one). Everything else - a client that is not reading, a frame arriving
while the writer sends - takes the queue and the writer task, with aiohttp's
``send_frame`` and its flow control.

Over 300 lines on purpose: the direct write, the held frames of a burst (burst.py),
the queue and the writer decide together which frame is next on the wire; split, the
order invariant would live in no one place.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from fullon_gateway.auth.identity import Caller
from fullon_gateway.metrics import Metrics
from fullon_gateway.stream.burst import Burst
from fullon_gateway.stream.counters import StreamCounters
from fullon_gateway.stream.frames import ws_text_header

if TYPE_CHECKING:
    from fullon_gateway.stream.fanout import Subscription

log = logging.getLogger(__name__)

SLOW_CONSUMER = 1013
GOING_AWAY = 1001  # also the heartbeat timeout: the peer is gone as far as we can tell
_MAX_BATCH = 512
_CLOSE_TIMEOUT = 5.0


class Connection:
    """One socket: its caller, its subscriptions, its queue and its writer task."""

    def __init__(self, ws: web.WebSocketResponse, metrics: Metrics, queue_limit: int,
                 batch: bool, label: str = "", counters: StreamCounters | None = None,
                 transport: asyncio.WriteTransport | None = None,
                 burst: Burst | None = None) -> None:
        self.ws = ws
        self.metrics = metrics
        self.counters = counters or StreamCounters(metrics)
        self.queue_limit = queue_limit
        self.batch = batch
        self.label = label  # the path's connection_id: a label for logs, never shared state
        self.caller: Caller | None = None
        self.user_id: int | None = None
        self.session_id: object | None = None
        self.api_key_id: int | None = None
        self.token: str | None = None  # the credential, re-checked now and then
        self.checked_at = time.monotonic()
        self.subs: dict[str, Subscription] = {}
        self.closing = False
        self.close_code: int | None = None
        # Heartbeat (StreamService.heartbeat_forever): any frame received is activity.
        self.last_seen = time.monotonic()
        self.pinged_at = 0.0
        self._ping_due = False
        # Each slot is [frame or None when conflated away, publish ts, conflation key,
        # stream label for metrics].
        self._queue: collections.deque[list[Any]] = collections.deque()
        self._pending: dict[Any, list[Any]] = {}
        self._live = 0
        self._observed = 0
        self._wake = asyncio.Event()
        # The request's transport when the direct write may be used (see the docstring).
        self._direct = None if batch or ws.compress else transport
        self._idle = False  # the writer is parked on _wake with nothing in hand
        self.direct_writes = 0  # frames that took the direct write (a plain int: cheap)
        self.direct_sends = 0  # transport writes they took (fewer: a burst's share one)
        self._burst = burst  # the hub's: direct writes during one read, sent together
        # This socket's frames in the open burst: header, frame, header, frame...
        self._held: list[bytes] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._reader_task: asyncio.Task[Any] | None = None
        self._close_task: asyncio.Task[None] | None = None

    def set_caller(self, caller: Caller, token: str | None = None) -> None:
        self.caller = caller
        if token is not None:
            self.token = token
        self.checked_at = time.monotonic()
        self.user_id = caller.user_id
        self.session_id = caller.session_id
        self.api_key_id = caller.api_key_id

    # -- queue ---------------------------------------------------------------------
    @property
    def direct(self) -> bool:
        """Whether frames may be written at once when the socket is idle."""
        return self._direct is not None

    def write_now(self, frame: bytes, ts: float | None = None) -> bool:
        """Write ``frame`` to the transport at once if it would be the next frame on the
        wire and the kernel took everything before it; False: queue it instead. While
        the hub's burst is open the write is held and sent with the socket's other
        frames of that read in one send (burst.py)."""
        held = self._held
        if held is not None:
            # Frames already held in this burst: this one follows them (nothing was
            # written since, so the checks below still hold). Header and frame are kept
            # apart: the flush joins them all in one copy.
            held += (ws_text_header(len(frame)), frame)
        else:
            t = self._direct
            if (t is None or not self._idle or self._queue or self.closing
                    or t.get_write_buffer_size() or t.is_closing() or self.ws.closed):
                return False
            burst = self._burst
            if burst is not None and burst.open:
                self._held = [ws_text_header(len(frame)), frame]
                burst.held.append(self)
            else:
                self._write(t, ws_text_header(len(frame)) + frame)
        self.direct_writes += 1
        if ts is not None:
            self._observe(ts)
        return True

    def flush_held(self) -> None:
        """Send what this socket held during the burst (burst.Burst.flush calls it)."""
        held, self._held = self._held, None
        t = self._direct
        if held is None or t is None or t.is_closing():
            return
        self._write(t, b"".join(held))

    def _write(self, t: asyncio.WriteTransport, data: bytes) -> None:
        self.direct_sends += 1
        try:
            t.write(data)
        except (ConnectionError, RuntimeError) as exc:
            # The peer went away; the reader notices and cleans up.
            log.debug("direct write to %s failed: %r", self.label, exc)
        except Exception:
            # Never raised by asyncio's or uvloop's transports (they report write errors
            # to the protocol), but a burst's flush must go on to the other sockets.
            log.exception("direct write to %s failed", self.label)

    def enqueue(self, frame: bytes, ckey: Any = None, ts: float | None = None,
                stream: str = "reply") -> None:
        """Send or queue a frame; ``ckey`` set means a newer frame with that key replaces
        it while it waits in the queue."""
        if self.closing or self.write_now(frame, ts):
            return
        slot = [frame, ts, ckey, stream]
        if ckey is not None:
            old = self._pending.get(ckey)
            if old is not None:
                old[0] = None
                self._live -= 1
                self.counters.conflated(stream).inc()
            self._pending[ckey] = slot
        q = self._queue
        q.append(slot)
        self._live += 1
        if self._burst is not None:
            self._burst.woke = True
        if self._live > self.queue_limit:
            self._slow_consumer()
            return
        if len(q) > 2 * self.queue_limit:
            # Blanked (conflated) slots otherwise leave only when the writer reaches
            # them: a client that never reads would grow the queue without bound.
            # Compact in place (the writer holds a reference), keeping the order; at
            # most queue_limit slots survive, so this costs O(1) per enqueue amortized.
            live = [s for s in q if s[0] is not None]
            q.clear()
            q.extend(live)
        self._wake.set()

    def ping(self) -> None:
        """Have the writer send a ping (never awaited here: the peer may not be reading)."""
        if self.closing:
            return
        self.pinged_at = time.monotonic()
        self._ping_due = True
        self._wake.set()

    @property
    def queued(self) -> int:
        """Frames waiting to be sent (conflated-away slots not counted)."""
        return self._live

    @property
    def backlog(self) -> int:
        """Slots in the queue, conflated-away ones included (bounded by 2 x queue_limit)."""
        return len(self._queue)

    def _slow_consumer(self) -> None:
        streams = collections.Counter(s[3] for s in self._queue if s[0] is not None)
        for stream, count in streams.items():
            self.counters.dropped(stream).inc(count)
        self.metrics.slow_closes.inc()
        log.info("closing slow consumer %s (user %s, %d queued)", self.label, self.user_id,
                 self._live)
        self._queue.clear()
        self._pending.clear()
        self._live = 0
        self.close_soon(SLOW_CONSUMER, "slow consumer")

    # -- writer --------------------------------------------------------------------
    def start(self) -> None:
        self._reader_task = asyncio.current_task()
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.label}")

    async def _write_loop(self) -> None:
        q, ws = self._queue, self.ws
        text = WSMsgType.TEXT
        try:
            while True:
                if self._ping_due:
                    self._ping_due = False
                    await ws.ping()
                    continue
                if not q:
                    self._wake.clear()
                    self._idle = True
                    try:
                        await self._wake.wait()
                    finally:
                        self._idle = False
                    continue
                if self.batch and self._live > 1:
                    frames: list[bytes] = []
                    ts = None
                    while q and len(frames) < _MAX_BATCH:
                        slot = self._take(q.popleft())
                        if slot is not None:
                            frames.append(slot[0])
                            ts = ts or slot[1]
                    if not frames:
                        continue
                    data = frames[0] if len(frames) == 1 else b"[" + b",".join(frames) + b"]"
                    if ts is not None:
                        self._observe(ts)
                    await ws.send_frame(data, text)
                    continue
                slot = self._take(q.popleft())
                if slot is None:
                    continue
                if slot[1] is not None:
                    self._observe(slot[1])
                await ws.send_frame(slot[0], text)
        except (ConnectionError, RuntimeError) as exc:
            # The peer went away mid-send; the reader notices and cleans up.
            log.debug("writer of %s stopped: %r", self.label, exc)

    def _take(self, slot: list[Any]) -> list[Any] | None:
        if slot[0] is None:
            return None
        self._live -= 1
        ckey = slot[2]
        if ckey is not None and self._pending.get(ckey) is slot:
            del self._pending[ckey]
        return slot

    def _observe(self, ts_ms: float) -> None:
        # Sampled (the first frame, then one in 16): a histogram observation takes a lock
        # and costs about as much as the rest of a delivery.
        self._observed += 1
        if self._observed & 15 == 1:
            self.metrics.publish_to_send.observe(max(0.0, time.time() - ts_ms / 1000))

    # -- closing -------------------------------------------------------------------
    def close_soon(self, code: int, reason: str) -> None:
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(
                self.close_with(code, reason))

    async def close_with(self, code: int, reason: str) -> None:
        """Close with ``code``/``reason``; the reader loop then ends and cleans up."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        await self.stop_writer()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()),
                                   _CLOSE_TIMEOUT)
        except (TimeoutError, ConnectionError, RuntimeError):
            # A peer that reads nothing never takes the close frame: stop its handler.
            if self._reader_task is not None and not self._reader_task.done():
                self._reader_task.cancel()

    async def stop_writer(self) -> None:
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
