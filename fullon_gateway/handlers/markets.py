"""/api/v1/markets: every exchange and symbol the gateway streams tickers for.

The answer comes from the ticker snapshots themselves (the ``tickers:{exchange}``
hashes fullon_cache writes), so it names exactly what a ``tickers`` subscription can
deliver, not what a catalog says exists. A client uses it to offer a picker instead of
asking its user to type exchange names.

Finding those hashes is a SCAN of the whole keyspace, so one answer serves every
caller for ``markets_cache_ttl`` seconds, and callers that arrive while it is being
read wait for that one read: however many clients ask, a process scans Redis at most
once per TTL. An exchange that starts streaming is listed within the TTL.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from fullon_gateway.errors import Unavailable
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import REDIS, SETTINGS
from fullon_gateway.stream import names

# Bounds on the answer: far above any real platform, small enough to stay cheap.
MAX_EXCHANGES = 200
MAX_SYMBOLS = 5000
# Only names a tickers subscription accepts (stream/protocol.py uses the same rule).
_EXCHANGE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class MarketsHandler:
    path = "/api/v1/markets"

    def __init__(self) -> None:
        self._answer: tuple[float, list[dict[str, Any]]] | None = None  # (read at, items)
        self._reading: asyncio.Task[list[dict[str, Any]]] | None = None
        self.scans = 0  # Redis scans made (for tests)
        self.joined = 0  # callers that waited for a scan already under way (for tests)

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self.path, self.markets)]

    async def markets(self, request: web.Request) -> web.Response:
        """Exchanges with live tickers and their symbols, both sorted by name."""
        ttl = request.app[SETTINGS].markets_cache_ttl
        if self._answer is not None and time.monotonic() - self._answer[0] < ttl:
            return json_response({"items": self._answer[1], "next_cursor": None})
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read(request.app))
            self._reading.add_done_callback(self._done)
        else:
            self.joined += 1
        # shield: one caller going away must not cancel the read the others wait for.
        items = await asyncio.shield(self._reading)
        return json_response({"items": items, "next_cursor": None})

    def _done(self, task: asyncio.Task[list[dict[str, Any]]]) -> None:
        self._reading = None
        if not task.cancelled() and task.exception() is None:
            self._answer = (time.monotonic(), task.result())

    async def _read(self, app: web.Application) -> list[dict[str, Any]]:
        redis = app[REDIS]
        head = app[SETTINGS].redis_prefix + names.tickers_key("")
        self.scans += 1
        try:
            found = {k.decode()[len(head):]
                     async for k in redis.scan_iter(match=head + "*", count=500)}
            exchanges = sorted(e for e in found if _EXCHANGE.fullmatch(e))[:MAX_EXCHANGES]
            async with redis.pipeline(transaction=False) as pipe:
                for exchange in exchanges:
                    pipe.hkeys(head + exchange)
                # A key of another type under the same name answers with an error
                # instead of failing the whole listing.
                replies = await pipe.execute(raise_on_error=False)
        except (aioredis.RedisError, OSError) as exc:
            raise Unavailable("redis is unreachable") from exc
        return [
            {"exchange": exchange, "symbols": sorted(s.decode() for s in reply)[:MAX_SYMBOLS]}
            for exchange, reply in zip(exchanges, replies, strict=True)
            if isinstance(reply, list) and reply
        ]
