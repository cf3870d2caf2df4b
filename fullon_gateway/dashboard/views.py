"""Dashboard pages (aiohttp-jinja2). The page holds no data: its script logs in over
the public API and reads everything through the same REST and WebSocket endpoints
any client uses, so the dashboard can never see more than its user may."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from fullon_gateway import __version__
from fullon_gateway.auth.identity import public

HERE = Path(__file__).parent

# The page loads only its own script and style, and talks only to this origin.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def setup_templates(app: web.Application) -> None:
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                         autoescape=True)


class DashboardHandler:
    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/", self.root),
            web.get("/dashboard", self.dashboard),
            web.static("/static", HERE / "static", name="static"),
        ]

    @public
    async def root(self, request: web.Request) -> web.Response:
        """Send browsers to the dashboard."""
        raise web.HTTPFound("/dashboard")

    @public
    async def dashboard(self, request: web.Request) -> web.Response:
        """The live dashboard page: log in, then watch tickers, bots and health."""
        response = aiohttp_jinja2.render_template(
            "dashboard.html", request, {"version": __version__}
        )
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
