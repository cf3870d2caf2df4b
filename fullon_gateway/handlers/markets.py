"""/api/v1/markets: every exchange and symbol the gateway streams tickers for.

The answer comes from the ticker snapshots themselves (the ``tickers:{exchange}``
hashes fullon_cache writes), so it names exactly what a ``tickers`` subscription can
deliver, not what a catalog says exists. A client uses it to offer a picker instead of
asking its user to type exchange names.
"""

from __future__ import annotations

import re

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

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self.path, self.markets)]

    async def markets(self, request: web.Request) -> web.Response:
        """Exchanges with live tickers and their symbols, both sorted by name."""
        redis = request.app[REDIS]
        head = request.app[SETTINGS].redis_prefix + names.tickers_key("")
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
        items = [
            {"exchange": exchange, "symbols": sorted(s.decode() for s in reply)[:MAX_SYMBOLS]}
            for exchange, reply in zip(exchanges, replies, strict=True)
            if isinstance(reply, list) and reply
        ]
        return json_response({"items": items, "next_cursor": None})
