"""The console pages (aiohttp-jinja2). The page holds no data: its script logs in over
the public API and reads everything through the same REST and WebSocket endpoints
any client uses, so the console can never see more than its user may.

``/`` is the console; ``/dashboard`` (its old address) redirects there. Templates and
static files are package data, so a non-editable install serves them too.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from fullon_gateway import __version__
from fullon_gateway.auth.identity import public
from fullon_gateway.keys import SETTINGS
from fullon_gateway.ohlcv.timeframes import TIMEFRAMES

HERE = Path(__file__).parent

# The page loads only its own script and style, and talks only to this origin
# ('self' covers ws:/wss: to the same host in CSP level 3, which every current
# browser implements). No inline script or style attribute is allowed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)



def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                         autoescape=True)


class DashboardHandler:
    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/", self.console),
            web.get("/dashboard", self.old_address),
            web.static("/static", HERE / "static", name="static"),
        ]

    @public
    async def old_address(self, request: web.Request) -> web.Response:
        """The console's old address: send browsers to /."""
        raise web.HTTPFound("/")

    @public
    async def console(self, request: web.Request) -> web.Response:
        """The live console: log in, then markets, chart, account and operators."""
        settings = request.app[SETTINGS]
        response = aiohttp_jinja2.render_template("console.html", request, {
            "version": __version__,
            "stale_after": settings.dashboard_stale_after,
            "timeframes": list(TIMEFRAMES),
        })
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response
