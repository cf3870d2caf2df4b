"""The real platform, unchanged: gateway subprocesses on a Redis of their own, fed only
by fullon_cache's writes (tests/fullon/writer.py, examples/fullon_writes.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis

from fullon_gateway.embedded import RedisProcess
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    ROOT,
    Server,
    base_env,
    start_server,
    stop_server,
)
from tests.fullon.writer import FullonWriter

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def platform(servers: tuple[str, str], gateway_database: Any,
             tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[RedisProcess, list[Server], dict[str, int]]]:
    """Two gateway processes on one own redis-server (keyspace notifications configured
    by the gateways) and one database, with an admin who owns an account and a bot."""
    redis_proc = RedisProcess(tmp_path_factory.mktemp("e2e-fullon-redis"))
    redis_proc.start()
    db_url = gateway_database("e2e_fullon")
    env = base_env()
    env.update({
        "FULLON_DATABASE_URL": db_url, "FULLON_REDIS_URL": redis_proc.url,
        "FULLON_REDIS_PREFIX": "", "FULLON_KEYSPACE_EVENTS": "configure",
        "FULLON_JWT_SECRET": "e2e-secret-" + "f" * 40,
        "FULLON_CONFIG": str(ROOT / "config" / "gateway.test.yaml"),
    })
    gateways = [start_server(tmp_path_factory.mktemp(f"e2e-fullon-{i}"), env)
                for i in range(2)]
    gateways[0].cli("create-user", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD,
                    "--admin", check=False)

    async def seed() -> dict[str, int]:
        conn = await asyncpg.connect(db_url)
        try:
            user_id = await conn.fetchval("SELECT user_id FROM users WHERE email = $1",
                                          ADMIN_EMAIL)
            cat = await conn.fetchval(
                """INSERT INTO cat_exchanges (name) VALUES ('kraken') ON CONFLICT (name)
                   DO UPDATE SET name = excluded.name RETURNING cat_ex_id""")
            ex_id = await conn.fetchval(
                """INSERT INTO exchanges (user_id, cat_ex_id, name) VALUES ($1, $2, 'k1')
                   RETURNING ex_id""", user_id, cat)
            bot_id = await conn.fetchval(
                "INSERT INTO bots (user_id, name) VALUES ($1, 'b1') RETURNING bot_id", user_id)
            return {"user_id": user_id, "ex_id": ex_id, "bot_id": bot_id}
        finally:
            await conn.close()

    ids = asyncio.run(seed())
    yield redis_proc, gateways, ids
    for gw in gateways:
        if gw.process.poll() is None:
            stop_server(gw)
    redis_proc.stop()


async def _token(session: aiohttp.ClientSession, url: str) -> str:
    async with session.post(url + "/api/v1/auth/login",
                            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["access_token"])


async def _subscribe(ws: Any, params: dict[str, Any]) -> int:
    await ws.send_json({"action": "subscribe", "request_id": "s", "params": params})
    while True:
        frame = json.loads((await ws.receive(timeout=15)).data)
        if frame.get("snapshot"):
            return int(frame["seq"])


async def _collect(ws: Any, seqs: list[int], want: int) -> None:
    while len(seqs) < want:
        msg = await ws.receive(timeout=20)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return
        frame = json.loads(msg.data)
        if frame.get("action") == "orders_update" and not frame.get("snapshot"):
            seqs.append(frame["seq"])


def test_two_gateways_deliver_identical_seqs_and_survive_one_dying(platform: Any) -> None:
    """Each fullon write is sequenced once however many gateways learn of it: both
    deliver the same seqs, and with one killed (SIGKILL) mid-stream the other still
    delivers every change the history holds."""
    redis_proc, (gw_a, gw_b), ids = platform

    async def scenario() -> None:
        r = aioredis.Redis.from_url(redis_proc.url)
        writer = FullonWriter(r)
        async with aiohttp.ClientSession() as session:
            tok = await _token(session, gw_a.url)
            ws_a = await session.ws_connect(gw_a.url + "/api/v1/cache/ws", params={"token": tok})
            ws_b = await session.ws_connect(gw_b.url + "/api/v1/cache/ws", params={"token": tok})
            params = {"stream": "orders", "ex_id": ids["ex_id"]}
            snap_seq = max(await _subscribe(ws_a, params), await _subscribe(ws_b, params))
            got_a: list[int] = []
            got_b: list[int] = []
            first, second = 40, 40
            for i in range(first):
                await writer.save_order_data(ids["ex_id"], {"order_id": f"e{i}", "status": "open"})
            await asyncio.gather(_collect(ws_a, got_a, first), _collect(ws_b, got_b, first))
            assert got_a == got_b and len(got_a) == first, "identical seqs on both gateways"
            # Kill A with changes in flight; B must still deliver all of them.
            writes = asyncio.ensure_future(asyncio.gather(*(
                writer.save_order_data(ids["ex_id"], {"order_id": f"k{i}", "status": "open"})
                for i in range(second))))
            gw_a.process.send_signal(signal.SIGKILL)
            await writes
            await _collect(ws_b, got_b, first + second)
            await ws_a.close()
            await ws_b.close()
        entries = await r.xrange(f"history:orders:{ids['ex_id']}")
        history = [json.loads(f[b"m"])["seq"] for _id, f in entries]
        await r.aclose()
        assert gw_a.process.wait(10) == -signal.SIGKILL
        assert [s for s in history if s > snap_seq] == got_b, "B missed nothing, no seq twice"
        assert len(set(got_b)) == first + second

    asyncio.run(scenario())


def _example(name: str, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / name), "--url", url, "--email", ADMIN_EMAIL,
         "--password", ADMIN_PASSWORD, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=Path(ROOT))


def test_fullon_writes_move_every_stream_of_the_examples(platform: Any) -> None:
    """Done means: with a script that uses only fullon_cache's writes running, every
    stream of example_cache_websocket.py --stream all moves, and the fullon_cache_api
    client passes on every per-stream path; all of them exit 0."""
    redis_proc, gateways, _ids = platform
    gw = next(g for g in gateways if g.process.poll() is None)
    writes = _example("fullon_writes.py", gw.url, "--redis", redis_proc.url,
                      "--duration", "120", "--rate", "8")
    try:
        watch = _example("example_cache_websocket.py", gw.url, "--stream", "all",
                         "--duration", "6")
        out, _ = watch.communicate(timeout=90)
        assert watch.returncode == 0, out
        for stream in ("tickers", "orders", "trades", "accounts", "bots", "ohlcv", "process"):
            assert f"ok    {stream} delivered" in out, out
        client = _example("example_cache_api_client.py", gw.url)
        out, _ = client.communicate(timeout=120)
        assert client.returncode == 0, out
        assert "all steps passed" in out
    finally:
        # SIGTERM, not SIGINT: a child of a non-interactive shell (as CI runs) starts with
        # SIGINT ignored, so Python never raises KeyboardInterrupt there.
        writes.terminate()
        try:
            writes.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            writes.kill()
            writes.communicate()
