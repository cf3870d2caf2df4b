"""REST benchmark: authenticated GET /api/v1/orm/users/me and GET /api/v1/orm/bots (100 rows)
against a bare aiohttp JSON handler, and the gateway standalone beside the gateway in
attach mode (in front of a fullon-shaped database), all measured in the same run, on
loopback.

    python scripts/bench/rest.py [--duration 5] [--connections 32]

Three server subprocesses are started (the gateway on its own schema, the gateway
attached to a database with fullon's tables, and a bare aiohttp app, all with access
logging off), then the load generator (wrk if installed, else an aiohttp client) hits
each in turn. Prints req/s, the ratio to the bare handler, and attach over standalone.
Targets: /users/me at least 50% of bare, i.e. an authenticated request does not touch
Postgres (identity and profile come from the auth layer's in-process cache); attach
mode at least 0.8x standalone on /users/me and /bots.

Needs Postgres and Redis (FULLON_BENCH_DATABASE_URL / FULLON_BENCH_REDIS_URL, default the
local ports); uses its own databases ``fgw_bench`` and ``fgw_bench_fullon`` (rebuilt on
every run from tests/fullon_shape.py, fullon's install-script shape) and a private Redis
prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
EMAIL, PASSWORD = "bench@example.com", "bench-password-123"
BOTS = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- servers (run in subprocesses) ------------------------------------------------------
def serve_bare(port: int) -> None:
    from aiohttp import web

    async def me(_request: web.Request) -> web.Response:
        return web.json_response({"user_id": 1, "email": EMAIL, "name": "bench", "role": "user",
                                  "is_active": True, "auth": "jwt", "scopes": ["read", "trade"]})

    app = web.Application()
    app.router.add_get("/", me)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_gateway(port: int, database_url: str, redis_url: str) -> None:
    from aiohttp import web

    from fullon_gateway.app import create_app
    from fullon_gateway.errors import Conflict
    from fullon_gateway.keys import AUTH
    from fullon_gateway.settings import load_settings

    settings = load_settings(environ={}, overrides={
        "database_url": database_url, "redis_url": redis_url,
        "redis_prefix": f"bench{os.getpid()}:", "keyspace_events": "off",
        "jwt_secret": "bench-secret-" + "x" * 40,
        "log_level": "WARNING", "argon2_time_cost": 1, "argon2_memory_kib": 1024,
        "db_pool_max": 10,
    })
    app = create_app(settings)

    async def seed_user(app: web.Application) -> None:
        with contextlib.suppress(Conflict):
            await app[AUTH].create_user(EMAIL, PASSWORD, "bench")

    app.on_startup.append(seed_user)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# -- load generation -----------------------------------------------------------------
def wrk(url: str, headers: dict[str, str], duration: float, connections: int) -> float:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s"]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 30,
                         check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} error responses\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


async def aiohttp_load(url: str, headers: dict[str, str], duration: float,
                       connections: int) -> float:
    count = 0
    deadline = time.perf_counter() + duration
    async with aiohttp.ClientSession(headers=headers,
                                     connector=aiohttp.TCPConnector(limit=connections)) as s:
        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                async with s.get(url) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{url}: {resp.status}")
                count += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return count / duration


def measure(url: str, headers: dict[str, str], args: argparse.Namespace,
            duration: float | None = None) -> float:
    duration = args.duration if duration is None else duration
    if shutil.which("wrk"):
        return wrk(url, headers, duration, args.connections)
    return asyncio.run(aiohttp_load(url, headers, duration, args.connections))


def fullon_url(database_url: str) -> str:
    return database_url.rsplit("/", 1)[0] + "/fgw_bench_fullon"


async def build_fullon(url: str) -> None:
    """A fresh database with fullon's tables (install-script shape), no rows."""
    import asyncpg

    sys.path.insert(0, str(ROOT))  # tests/fullon_shape.py builds the schema from the facts
    from tests import fullon_shape

    base, name = url.rsplit("/", 1)
    admin = await asyncpg.connect(base + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(url)
    try:
        await fullon_shape.build(conn, "base")
    finally:
        await conn.close()


# -- orchestration ---------------------------------------------------------------------
async def wait_up(url: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server at {url} did not come up")
            await asyncio.sleep(0.2)


async def prepare(base: str) -> tuple[str, str]:
    """Log in, make sure the bench user has BOTS bots, mint a read key; (token, key)."""
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/auth/login",
                          json={"email": EMAIL, "password": PASSWORD}) as resp:
            token = str((await resp.json())["access_token"])
        headers = {"Authorization": f"Bearer {token}"}
        async with s.get(f"{base}/api/v1/orm/bots?limit=1000", headers=headers) as resp:
            have = len((await resp.json())["items"])
        for i in range(have, BOTS):
            async with s.post(f"{base}/api/v1/orm/bots", headers=headers,
                              json={"name": f"bench-{i}"}) as resp:
                assert resp.status == 201, await resp.text()
        async with s.post(f"{base}/api/v1/orm/api_keys/me", headers=headers,
                          json={"name": f"bench-{time.time()}", "scopes": ["read"]}) as resp:
            key = str((await resp.json())["key"])
    return token, key


def main() -> int:
    parser = argparse.ArgumentParser(description="REST benchmark vs a bare aiohttp handler")
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", choices=["bare", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default=os.environ.get(
        "FULLON_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/fgw_bench"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "FULLON_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    if args.serve == "bare":
        serve_bare(args.port)
        return 0
    if args.serve == "gateway":
        serve_gateway(args.port, args.database_url, args.redis_url)
        return 0

    bare_port, gw_port, at_port = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    attached_db = fullon_url(args.database_url)
    asyncio.run(build_fullon(attached_db))
    common = [sys.executable, __file__, "--redis-url", args.redis_url]
    procs = [
        subprocess.Popen([*common, "--serve", "bare", "--port", str(bare_port)], env=env),
        subprocess.Popen([*common, "--serve", "gateway", "--port", str(gw_port),
                          "--database-url", args.database_url], env=env),
        subprocess.Popen([*common, "--serve", "gateway", "--port", str(at_port),
                          "--database-url", attached_db], env=env),
    ]
    try:
        bare = f"http://127.0.0.1:{bare_port}"
        gw = f"http://127.0.0.1:{gw_port}"
        at = f"http://127.0.0.1:{at_port}"
        asyncio.run(wait_up(bare + "/"))
        asyncio.run(wait_up(gw + "/health/live"))
        asyncio.run(wait_up(at + "/health/live"))
        token, key = asyncio.run(prepare(gw))
        at_token, _at_key = asyncio.run(prepare(at))
        auth = {"Authorization": f"Bearer {token}"}
        at_auth = {"Authorization": f"Bearer {at_token}"}
        tool = "wrk" if shutil.which("wrk") else "aiohttp client"
        targets = {
            "bare aiohttp JSON handler": (bare + "/", {}),
            "GET /api/v1/orm/users/me (JWT)": (gw + "/api/v1/orm/users/me", auth),
            "GET /api/v1/orm/users/me (API key)": (gw + "/api/v1/orm/users/me",
                                                   {"X-API-Key": key}),
            "GET /health/live (public, no auth)": (gw + "/health/live", {}),
            f"GET /api/v1/orm/bots ({BOTS} rows, JWT)": (gw + "/api/v1/orm/bots", auth),
            "attach: GET /api/v1/orm/users/me (JWT)": (at + "/api/v1/orm/users/me", at_auth),
            f"attach: GET /api/v1/orm/bots ({BOTS} rows, JWT)": (at + "/api/v1/orm/bots",
                                                                 at_auth),
        }
        print(f"load: {tool}, {args.connections} connections, {args.rounds} rounds of "
              f"{args.duration:.0f}s per target (bare measured in every round)")
        for url, headers in targets.values():
            measure(url, headers, args, duration=1)  # warm-up: pools, caches, prepared SQL
        # The machine is shared: each round measures bare right before the others, and
        # ratios are taken within a round, so load that drifts between rounds cancels out.
        rps: dict[str, list[float]] = {name: [] for name in targets}
        ratios: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            base = measure(*targets["bare aiohttp JSON handler"], args)
            for name, (url, headers) in targets.items():
                value = base if name.startswith("bare") else measure(url, headers, args)
                rps[name].append(value)
                ratios[name].append(value / base)
        print(f"{'target':42} {'req/s (median)':>15} {'vs bare (median)':>17}")
        for name in targets:
            print(f"{name:42} {statistics.median(rps[name]):15.0f} "
                  f"{statistics.median(ratios[name]):17.1%}")
        for label in ("JWT", "API key"):
            me = statistics.median(ratios[f"GET /api/v1/orm/users/me ({label})"])
            verdict = "met" if me >= 0.5 else "NOT met"
            print(f"target /users/me ({label}) >= 50% of bare: {verdict} ({me:.1%})")
        # Attach over standalone, per round (both measured minutes apart at most).
        for name in ("GET /api/v1/orm/users/me (JWT)", f"GET /api/v1/orm/bots ({BOTS} rows, JWT)"):
            per_round = [a / s for a, s in zip(rps["attach: " + name], rps[name], strict=True)]
            ratio = statistics.median(per_round)
            verdict = "met" if ratio >= 0.8 else "NOT met"
            print(f"target attach >= 0.8x standalone, {name}: {verdict} ({ratio:.2f}x; rounds "
                  + ", ".join(f"{r:.2f}" for r in per_round) + ")")
        return 0
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
