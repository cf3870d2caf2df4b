"""config/nginx.conf in front of two gateway processes (docs/operations.md)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request

import aiohttp
import pytest
import redis.asyncio as aioredis

from fullon_gateway.embedded import _free_port
from fullon_gateway.stream.publish import Publisher
from tests.e2e.conftest import ROOT
from tests.faults.conftest import EMAIL, PASSWORD

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed")]


@pytest.fixture
def nginx(two_gateways, tmp_path):
    """nginx with the repository's config, its upstreams pointed at the two gateways."""
    a, b = two_gateways
    port = _free_port()
    conf = (ROOT / "config" / "nginx.conf").read_text()
    conf = conf.replace("127.0.0.1:8001", a.url.removeprefix("http://"))
    conf = conf.replace("127.0.0.1:8002", b.url.removeprefix("http://"))
    conf = conf.replace("listen 8000;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("worker_processes auto;", "worker_processes 1;")
    (tmp_path / "logs").mkdir()
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    check = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(path)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(path),
                             "-g", "daemon off;"], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            with urllib.request.urlopen(url + "/health/live", timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode()) from None
            time.sleep(0.05)  # polling a process we cannot await; bounded
    yield url, a, b
    proc.terminate()
    proc.wait(10)
    assert proc.stderr is not None
    proc.stderr.close()


async def test_rest_and_streams_through_nginx(nginx):
    """Through nginx (no sticky sessions): WebSockets upgrade, are spread over both
    processes (each holds at least one), get their snapshot and a later publish, and
    the throttle counts the client nginx names in X-Forwarded-For, not nginx."""
    url, a, b = nginx
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/api/v1/auth/login",
                                json={"email": EMAIL, "password": PASSWORD}) as resp:
            assert resp.status == 200
            token = (await resp.json())["access_token"]
        sockets = []
        for _ in range(4):  # least_conn spreads them over both upstreams
            ws = await session.ws_connect(url + "/api/v1/cache/ws", params={"token": token})
            await ws.send_json({"action": "subscribe", "request_id": 1, "params": {
                "stream": "tickers", "exchange": "kraken", "symbol": "BTC/USD"}})
            assert json.loads((await ws.receive(timeout=10)).data)["success"] is True
            assert json.loads((await ws.receive(timeout=10)).data)["snapshot"] is True
            sockets.append(ws)
        for srv in (a, b):  # each upstream holds some of them
            async with session.get(srv.url + "/metrics") as resp:
                text = await resp.text()
            open_sockets = [line for line in text.splitlines()
                            if line.startswith("gateway_ws_open_sockets ")]
            assert open_sockets and float(open_sockets[0].split()[1]) >= 1, srv.url
        client = aioredis.Redis.from_url(a.env["FULLON_REDIS_URL"])
        try:
            seq = await Publisher(client, a.env["FULLON_REDIS_PREFIX"]).ticker(
                "kraken", "BTC/USD", {"price": 9})
        finally:
            await client.aclose()
        for ws in sockets:
            frame = json.loads((await ws.receive(timeout=10)).data)
            assert frame["seq"] == seq
        # gateway.test.yaml: 3 failures per account and address. Two clients behind
        # nginx, by their X-Forwarded-For, are throttled apart.
        for forwarded, expected in (("10.0.0.1", [401, 401, 401, 429]),
                                    ("10.0.0.2", [401])):
            for status in expected:
                async with session.post(url + "/api/v1/auth/login",
                                        headers={"X-Forwarded-For": forwarded},
                                        json={"email": EMAIL, "password": "x"}) as resp:
                    assert resp.status == status
        await asyncio.gather(*(ws.close() for ws in sockets))
