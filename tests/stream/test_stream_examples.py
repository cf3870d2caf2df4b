"""The stream examples and the demo simulator, run for real against the app."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from fullon_gateway.demo import run_demo, seed_demo
from fullon_gateway.keys import DB
from tests.modes import standalone_only
from tests.stream.support import publisher

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


async def _example(client, name: str, *args: str) -> tuple[int, str]:
    url = str(client.make_url("")).rstrip("/")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples" / name), "--url", url, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode()


async def _demo_running(client, settings):
    stop = asyncio.Event()
    task = asyncio.create_task(run_demo(settings, stop))
    deadline = asyncio.get_running_loop().time() + 30
    while await client.app[DB].fetchval("SELECT count(*) FROM bots") < 2:
        assert asyncio.get_running_loop().time() < deadline and not task.done()
        await asyncio.sleep(0.05)  # polling the seeding in another task, bounded
    return stop, task


@standalone_only("the demo seeds the gateway's own tables, refuses a fullon database")
async def test_cache_websocket_example_sees_every_stream(client, settings):
    """With the demo simulator publishing, example_cache_websocket.py --stream all gets a
    snapshot and live updates on every stream the demo user may see, and shows the 1008
    close for a bad token."""
    stop, task = await _demo_running(client, settings)
    try:
        code, out = await _example(client, "example_cache_websocket.py", "--stream", "all",
                                   "--duration", "4")
    finally:
        stop.set()
        seeded = await task
    assert code == 0, out
    assert "bad token closed with 1008" in out and "all steps passed" in out
    for stream in ("tickers", "trades", "ohlcv", "orders", "accounts", "bots"):
        assert f"{stream} delivered" in out
    assert seeded["email"] == "demo@example.com"


@standalone_only("the demo seeds the gateway's own tables, refuses a fullon database")
async def test_resume_example_replays_the_gap(client, settings):
    """example_resume.py disconnects, reconnects with since and gets the gap replayed."""
    stop, task = await _demo_running(client, settings)
    # The demo's own trade rate drops on a loaded machine; a steady extra publisher makes
    # sure the example's offline second always has trades to replay.
    pub = publisher(client)

    async def trades() -> None:
        n = 0
        while not stop.is_set():
            await pub.trade("kraken", "BTC/USD", {"price": 50_000.0 + n, "volume": 0.01,
                                                  "side": "buy", "n": n})
            n += 1
            await asyncio.sleep(0.05)  # pacing, not synchronization

    feeder = asyncio.create_task(trades())
    try:
        code, out = await _example(client, "example_resume.py", "--stream", "trades",
                                   "--pause", "1")
    finally:
        stop.set()
        await task
        await feeder
    assert code == 0, out
    assert "recovered: true" in out and "all steps passed" in out


async def test_example_fails_when_a_stream_is_silent(client):
    """Without a publisher, the example reports the silent stream and exits non-zero."""
    await seed_demo(client.app[DB])
    code, out = await _example(client, "example_cache_websocket.py", "--stream", "orders",
                               "--duration", "1")
    assert code != 0
    assert "FAIL" in out and "all steps passed" not in out
