"""The console page and its assets are served to anyone; data needs a login. The page
carries a strict CSP, holds no inline script or style, escapes what it renders, and
every file it needs ships as package data (so a non-editable install serves it)."""

from __future__ import annotations

import configparser
import fnmatch
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp_jinja2

import fullon_gateway
from fullon_gateway.dashboard.views import CSP

PACKAGE = Path(fullon_gateway.__file__).parent


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


async def test_console_is_served_at_root_and_old_address_redirects(client: Any) -> None:
    """GET / is the console; GET /dashboard (the old address) sends browsers to /."""
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 200
    assert 'id="login-form"' in await resp.text()
    old = await client.get("/dashboard", allow_redirects=False)
    assert old.status == 302
    assert old.headers["Location"] == "/"


async def test_console_page_is_locked_down(client: Any) -> None:
    """A strict CSP (own origin only, no inline or eval, no framing) and a page with no
    inline script, inline style or event-handler attribute for it to forbid."""
    resp = await client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert csp == CSP
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"
    parser = _Tags()
    parser.feed(await resp.text())
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts == [{"type": "module", "src": "/static/js/app.js"}]
    assert parser.script_text.strip() == ""
    for tag, attrs in parser.tags:
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"^(https?:)?//", value), f"{tag} loads from elsewhere: {value}"


async def test_console_template_escapes_what_it_renders(client: Any) -> None:
    """The template environment autoescapes: markup in a rendered value is text."""
    env = aiohttp_jinja2.get_env(client.app)
    html = env.get_template("console.html").render(
        version='<script>alert("x")</script>', stale_after="10", timeframes=["<b>1m</b>"])
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert "&lt;b&gt;1m&lt;/b&gt;" in html


async def test_console_offers_all_timeframes_and_the_stale_setting(
        app_client: Any, make_settings: Any) -> None:
    """The chart's timeframe selector lists all 15 timeframes, and the stale mark
    starts from the dashboard_stale_after setting."""
    client = await app_client(make_settings(dashboard_stale_after=42.5))
    html = await (await client.get("/")).text()
    assert re.findall(r'data-tf="([^"]+)"', html) == [
        "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
        "1d", "3d", "1w", "1M"]
    assert 'data-stale-after="42.5"' in html


async def test_console_assets_are_served(client: Any) -> None:
    """Every script and the stylesheet are served without credentials, as JavaScript
    and CSS; a missing asset is 404 and a path outside the folder is refused."""
    for path in sorted((PACKAGE / "dashboard" / "static" / "js").glob("*.js")):
        resp = await client.get(f"/static/js/{path.name}")
        assert resp.status == 200, path.name
        assert resp.content_type in {"application/javascript", "text/javascript"}
    app_js = await (await client.get("/static/js/app.js")).text()
    assert "import" in app_js
    css = await client.get("/static/console.css")
    assert css.status == 200 and css.content_type == "text/css"
    assert (await client.get("/static/nope.js")).status == 404
    assert (await client.get("/static/../views.py")).status in {403, 404}


def test_every_console_file_is_package_data() -> None:
    """setup.cfg's package_data covers every template and static file, so a wheel (a
    non-editable install) carries the whole console."""
    cfg = configparser.ConfigParser()
    cfg.read(PACKAGE.parent / "setup.cfg")
    patterns = [p.strip() for p in cfg["options.package_data"]["fullon_gateway"].split("\n")
                if p.strip()]
    files = [p for p in (PACKAGE / "dashboard").rglob("*")
             if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert files
    for f in files:
        rel = f.relative_to(PACKAGE).as_posix()
        assert any(fnmatch.fnmatch(rel, pat) and rel.count("/") == pat.count("/")
                   for pat in patterns), f"{rel} is not package data"
