"""Snapshot reads, batched: many subscriptions' state in one MULTI and one pool checkout.

A subscribe storm (10,000 sockets at once) made one MULTI per subscription, each
holding one of the Redis pool's connections; past the pool's wait they failed. Here a
read that arrives while ``flights`` batches are in flight waits for the next batch:
one MULTI of at most ``max_batch`` reads. A MULTI is atomic, so its one global seq G
holds for every read in it, exactly as for a read of its own. A lone read goes out at
once, so a quiet server adds no latency. Kinds that read their state another way (a
script) are not batched.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from fullon_gateway.stream import names
from fullon_gateway.stream.kinds import StreamKind, Tally, Target

# A read waiting for its batch: what to read, its lenient-decoding tally, its answer.
_Read = tuple[Target, Tally, "asyncio.Future[tuple[int, Any]]"]

MAX_BATCH = 64  # a batch's reply must arrive within the socket timeout (5 s)
FLIGHTS = 4


class SnapshotReader:
    def __init__(self, redis: aioredis.Redis, prefix: str, max_batch: int = MAX_BATCH,
                 flights: int = FLIGHTS) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max_batch = max_batch
        self._max_flights = flights
        self._pending: list[_Read] = []
        self._flights: set[asyncio.Task[None]] = set()
        self.batches = 0  # MULTIs sent (for tests and benchmarks)

    async def read(self, t: Target, tally: Tally) -> tuple[int, Any]:
        """(global seq G, snapshot result) read atomically with the publisher's script."""
        if type(t.kind).read_snapshot is not StreamKind.read_snapshot:
            return await t.kind.read_snapshot(self._redis, self._prefix, t, tally)
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((t, tally, future))
        self._launch()
        return await future

    def _launch(self) -> None:
        while self._pending and len(self._flights) < self._max_flights:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self._flights.add(task)
            task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._flights.discard(task)
        self._launch()

    async def _flush(self, batch: list[_Read]) -> None:
        batch = [r for r in batch if not r[2].done()]  # callers that gave up
        if not batch:
            return
        self.batches += 1
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(self._prefix + names.SEQ_COUNTER)
                spans = []
                for t, _tally, _future in batch:
                    start = len(pipe)
                    t.kind.queue_snapshot(pipe, t, self._prefix)
                    spans.append((start, len(pipe)))
                replies = await pipe.execute()
        except asyncio.CancelledError:
            for _t, _tally, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _t, _tally, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        seq = int(replies[0] or 0)
        for (t, tally, future), (start, end) in zip(batch, spans, strict=True):
            if future.done():
                continue
            try:
                future.set_result((seq, t.kind.build_snapshot(t, replies[start:end], tally)))
            except Exception as exc:  # one bad stored value fails its own read only
                future.set_exception(exc)

    async def stop(self) -> None:
        for task in list(self._flights):
            task.cancel()
        await asyncio.gather(*self._flights, return_exceptions=True)
