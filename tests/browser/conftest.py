"""Browser fixtures: Debian's chromium driven headless through the playwright package,
against the real app served by aiohttp's test server on a free port.

The tests skip, saying why, only where no browser can be had: the playwright package
is missing, or no chromium executable exists (``.ci/run`` installs both). When a test
fails, a screenshot of every view of every page it opened is saved under
``test-output/browser/<test name>/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fullon_gateway.keys import REDIS, SETTINGS
from fullon_gateway.stream.publish import Publisher

CHROMIUM = (os.environ.get("FULLON_TEST_CHROMIUM") or shutil.which("chromium")
            or shutil.which("chromium-browser") or "/usr/bin/chromium")
# Flags that work in a container without a display, GPU, sandbox or network.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
WAIT = 20_000  # ms: the machine is shared and slow at times


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    # Keep each phase's report on the test item, so fixtures can tell a failure.
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


class Console:
    """One browser tab on the console, with helpers that wait on what the page shows."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.logs: list[str] = []
        page.on("console", lambda m: self.logs.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.logs.append(f"pageerror: {e}"))

    async def open(self) -> None:
        await self.page.goto(self.base)
        await self.page.wait_for_selector("body[data-ready=login]", timeout=WAIT)

    async def login(self, email: str, password: str) -> None:
        """Log in through the form, as a person would, and wait for the panels."""
        await self.open()
        await self.page.fill("#login-form input[name=email]", email)
        await self.page.fill("#login-form input[name=password]", password)
        await self.page.click("#login-form button[type=submit]")
        await self.page.wait_for_selector("body[data-ready=true]", timeout=WAIT)
        await self.wait_text("#conn", "connected")

    async def wait_text(self, selector: str, text: str) -> None:
        """Wait until the element's text contains ``text``."""
        await self.page.wait_for_function(
            "([sel, text]) => { const n = document.querySelector(sel);"
            " return n && n.textContent.includes(text); }",
            arg=[selector, text], timeout=WAIT)

    async def text(self, selector: str) -> str:
        return str(await self.page.text_content(selector) or "")

    async def view(self, name: str) -> None:
        await self.page.click(f"#tabs .tab[data-view={name}]")
        await self.page.wait_for_selector(f"#view-{name}:not([hidden])", timeout=WAIT)

    async def screenshots(self, folder: Path, label: str) -> None:
        """A screenshot of every view the page offers (best effort: the page may be gone)."""
        try:
            await self.page.screenshot(path=str(folder / f"{label}-current.png"), full_page=True)
            for tab in await self.page.query_selector_all("#tabs:not([hidden]) .tab:not([hidden])"):
                name = await tab.get_attribute("data-view")
                await tab.click(timeout=2000)
                await self.page.screenshot(path=str(folder / f"{label}-{name}.png"), full_page=True)
            (folder / f"{label}-console.log").write_text("\n".join(self.logs))
        except Exception as exc:  # a failed screenshot must not hide the failure
            (folder / f"{label}-screenshot-error.txt").write_text(repr(exc))


@pytest.fixture
async def browser_context(tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh headless chromium profile (its own --user-data-dir)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (.ci/run installs it)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no chromium executable ({CHROMIUM}); .ci/run installs Debian's chromium")
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS,
            viewport={"width": 1366, "height": 800})
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture
async def console(browser_context: Any, client: Any, request: Any) -> AsyncIterator[Any]:
    """make() -> a Console tab on the test server; screenshots of each view on failure."""
    pages: list[Console] = []
    base = str(client.make_url("/"))

    async def make(viewport: dict[str, int] | None = None) -> Console:
        page = browser_context.pages[0] if not pages and browser_context.pages \
            else await browser_context.new_page()
        if viewport:
            await page.set_viewport_size(viewport)
        tab = Console(page, base)
        pages.append(tab)
        return tab

    yield make
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        folder = OUTPUT / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        folder.mkdir(parents=True, exist_ok=True)
        for i, tab in enumerate(pages):
            await tab.screenshots(folder, f"page{i + 1}")
        print(f"screenshots of the failed test: {folder}")


@pytest.fixture
def publisher(client: Any) -> Publisher:
    """The project's Publisher, on the app's Redis and prefix."""
    s = client.app[SETTINGS]
    return Publisher(client.app[REDIS], s.redis_prefix, s.history_len)
