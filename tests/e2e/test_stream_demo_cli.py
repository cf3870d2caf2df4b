"""`python -m fullon_gateway demo` end to end: the real server process with the simulator,
and the stream examples run against it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import RUN_ID, _worker
from tests.e2e.conftest import ROOT, base_env, start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_server(servers, gateway_database, tmp_path_factory):
    """A gateway subprocess started with the demo sub-command."""
    worker, _ = _worker()
    env = base_env()
    env.update({
        "FULLON_DATABASE_URL": gateway_database("demo"),
        "FULLON_REDIS_URL": servers[1],
        "FULLON_REDIS_PREFIX": f"demo{RUN_ID}{worker}:",
        "FULLON_JWT_SECRET": "demo-secret-" + "z" * 40,
        "FULLON_CONFIG": str(ROOT / "config" / "gateway.test.yaml"),
        "FULLON_DEMO_HISTORY_DAYS": "0.5",
    })
    srv = start_server(tmp_path_factory.mktemp("demo"), env, "demo")
    yield srv
    if srv.process.poll() is None:
        assert stop_server(srv) == 0


def _run(server, name, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), "--url", server.url, *args],
        env=server.env, capture_output=True, text=True, timeout=120,
    )


def test_demo_feeds_every_stream_of_the_cache_example(demo_server):
    """With the demo running, example_cache_websocket.py --stream all (as the demo user)
    sees snapshots and live updates on every stream and the 1008 close for a bad token."""
    done = _run(demo_server, "example_cache_websocket.py", "--stream", "all",
                "--duration", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all steps passed" in done.stdout


def test_demo_with_resume_example(demo_server):
    """example_resume.py against the demo: reconnect with since replays the gap."""
    done = _run(demo_server, "example_resume.py", "--stream", "orders", "--pause", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all steps passed" in done.stdout


def test_demo_loads_ohlcv_history(demo_server):
    """The demo loads a trade history in the background: the OHLCV endpoints soon list
    the demo exchanges and serve 1h candles for a demo symbol."""
    import json
    import time
    import urllib.request
    from urllib.parse import quote

    def get(path, token):
        req = urllib.request.Request(demo_server.url + path,
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    req = urllib.request.Request(
        demo_server.url + "/api/v1/auth/login", method="POST",
        data=json.dumps({"email": "demo@example.com", "password": "demo-password"}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        token = json.loads(resp.read())["access_token"]
    deadline = time.monotonic() + 60
    symbols: list = []
    while time.monotonic() < deadline:  # the load runs in the server; poll its effect
        exchanges = get("/api/v1/ohlcv/exchanges", token)
        if "kraken" in json.dumps(exchanges):
            symbols = get("/api/v1/ohlcv/exchanges/kraken/symbols", token).get("symbols", [])
            if "BTC/USD" in json.dumps(symbols):
                break
        time.sleep(0.2)
    assert "BTC/USD" in json.dumps(symbols), symbols
    candles = get(f"/api/v1/ohlcv/candles/kraken/{quote('BTC/USD', safe='')}/1h?limit=5", token)
    assert candles["success"] and candles["count"] >= 1, candles
