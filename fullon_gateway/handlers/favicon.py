"""GET /favicon.ico: the gateway's icon (three candlesticks), public and cacheable.

Browsers ask for it on every page of the console and the API docs; without it each
visit logs a 404. The file is a 32x32 ICO holding one PNG (static/favicon.ico).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aiohttp import web

from fullon_gateway.auth.identity import public

ICON = Path(__file__).resolve().parent.parent / "static" / "favicon.ico"


@cache
def _icon() -> bytes:
    return ICON.read_bytes()


class FaviconHandler:
    def routes(self) -> list[web.RouteDef]:
        return [web.get("/favicon.ico", self.favicon)]

    @public
    async def favicon(self, request: web.Request) -> web.Response:
        """The gateway's icon (image/vnd.microsoft.icon); public."""
        return web.Response(body=_icon(), content_type="image/vnd.microsoft.icon",
                            headers={"Cache-Control": "public, max-age=86400"})
