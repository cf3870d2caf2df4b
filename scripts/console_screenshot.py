"""Screenshots of the console, made the way the browser tests drive it.

Starts ``python -m fullon_gateway demo`` on a free port (with whatever FULLON_*
settings the environment gives: database, Redis, prefix), adds an admin user so the
Operators view has something to show, logs in through the form in headless chromium
and saves one PNG per view::

    python scripts/console_screenshot.py --out docs/img
    # docs/img/console.png (Trade), console-account.png, console-operators.png,
    # console-phone.png

Needs the ``playwright`` package (a dev dependency) and a chromium executable
(``--chromium``, default: the one on PATH). Exits non-zero when a view does not fill.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DEMO_EMAIL, DEMO_PASSWORD = "demo@example.com", "demo-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the gateway exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/health/ready", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("the gateway did not become ready")


async def shoot(base: str, out: Path, chromium: str, admin: tuple[str, str],
                settle: float) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=ARGS)

        async def login(page: Any, email: str, password: str) -> None:
            await page.goto(base + "/")
            await page.fill("#login-form input[name=email]", email)
            await page.fill("#login-form input[name=password]", password)
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("body[data-ready=true]", timeout=30_000)

        laptop = await browser.new_page(viewport={"width": 1440, "height": 900})
        await login(laptop, DEMO_EMAIL, DEMO_PASSWORD)
        await laptop.wait_for_selector("#orders-table tbody tr", timeout=30_000)
        # The demo's seeded history is kraken BTC/USD: chart that one.
        await laptop.click('#market-table tr[data-exchange=kraken][data-symbol="BTC/USD"]')
        await asyncio.sleep(settle)  # let the market move a little: a still picture
        # Show the crosshair and its readout on a bar near the right edge.
        box = await laptop.eval_on_selector(
            "#chart",
            "c => { const r = c.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }")
        await laptop.mouse.move(box[0] + box[2] * 0.78, box[1] + box[3] * 0.35)
        await asyncio.sleep(0.3)
        await laptop.screenshot(path=str(out / "console.png"))
        await laptop.click("#tabs .tab[data-view=account]")
        await laptop.wait_for_selector(".account-card", timeout=30_000)
        await asyncio.sleep(1)
        await laptop.screenshot(path=str(out / "console-account.png"))

        ops = await browser.new_page(viewport={"width": 1440, "height": 900})
        await login(ops, *admin)
        await ops.click("#tabs .tab[data-view=ops]")
        await ops.wait_for_selector("#process-table tbody tr", timeout=30_000)
        await asyncio.sleep(3)  # two /metrics samples, for rates
        await ops.screenshot(path=str(out / "console-operators.png"))

        phone = await browser.new_page(viewport={"width": 390, "height": 844},
                                       device_scale_factor=2)
        await login(phone, DEMO_EMAIL, DEMO_PASSWORD)
        await asyncio.sleep(settle)
        await phone.screenshot(path=str(out / "console-phone.png"))
        await browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/img", help="folder for the PNG files")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--settle", type=float, default=8.0,
                        help="seconds of live data before each picture")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "FULLON_PORT": str(port), "FULLON_HOST": "127.0.0.1"}
    admin = (f"ops-{secrets.token_hex(3)}@example.com", secrets.token_urlsafe(16))
    subprocess.run([sys.executable, "-m", "fullon_gateway", "create-user", "--email", admin[0],
                    "--password", admin[1], "--admin", "--name", "Operator"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([sys.executable, "-m", "fullon_gateway", "demo"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        asyncio.run(shoot(base, out, args.chromium, admin, args.settle))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for name in ("console.png", "console-account.png", "console-operators.png",
                 "console-phone.png"):
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
