"""The platform's process registry over REST (/api/v1/services)."""

from __future__ import annotations

import redis.asyncio as aioredis
from aiohttp import web

from fullon_gateway.auth.identity import requires
from fullon_gateway.errors import Unavailable
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import STREAMS


class ServicesHandler:
    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v1/services", self.services)]

    @requires("admin")
    async def services(self, request: web.Request) -> web.Response:
        """The platform's processes from the process registry, with heartbeat age."""
        try:
            procs = await request.app[STREAMS].processes()
        except (aioredis.RedisError, OSError) as exc:
            raise Unavailable("redis is unreachable") from exc
        return json_response({"items": procs, "next_cursor": None})
