"""Fuzz every route of the generated OpenAPI document with schemathesis; fail on any 5xx.

    python scripts/ci/schemathesis_rest.py [--max-examples 10] [--max-time 100]

Starts the gateway in a subprocess on a fresh database (``fgw_schemathesis``), seeds a
catalog, an exchange account, a bot, orders and trades through the API (so generated
ids sometimes hit real rows), then runs ``schemathesis run`` as an admin with the
``not_a_server_error`` check. Logout is excluded: it would revoke the token mid-run.
Exit status is schemathesis's (0 = no server error found).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
EMAIL, PASSWORD = "fuzz-admin@example.com", "fuzz-password-123"


def serve(port: int, database_url: str, redis_url: str) -> None:
    from aiohttp import web

    from fullon_gateway.app import create_app
    from fullon_gateway.errors import Conflict
    from fullon_gateway.keys import AUTH
    from fullon_gateway.settings import load_settings

    settings = load_settings(environ={}, overrides={
        "database_url": database_url, "redis_url": redis_url,
        "redis_prefix": f"fuzz{os.getpid()}:", "jwt_secret": "fuzz-secret-" + "x" * 40,
        "log_level": "WARNING", "argon2_time_cost": 1, "argon2_memory_kib": 1024,
        "access_ttl": 3600, "login_max_failures": 10_000,
        "login_max_failures_per_address": 10_000,
    })
    app = create_app(settings)

    async def seed_admin(app: web.Application) -> None:
        with contextlib.suppress(Conflict):
            await app[AUTH].create_user(EMAIL, PASSWORD, "fuzz", role="admin")

    app.on_startup.append(seed_admin)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def drop_database(url: str) -> None:
    """Drop the database ``url`` names (any URL form: TCP, or a Unix socket in ?host=)."""
    import asyncpg

    from fullon_gateway.store.pool import _with_database, database_name

    admin = await asyncpg.connect(_with_database(url, "postgres"))
    name = database_name(url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def schemathesis_command() -> str | None:
    """The schemathesis installed beside this Python (a venv need not be on PATH)."""
    here = Path(sys.executable).parent
    for name in ("schemathesis", "st"):
        if (here / name).exists():
            return str(here / name)
    return shutil.which("schemathesis") or shutil.which("st")


async def seed(base: str) -> str:
    """Log in as the admin and create one of everything; return the access token."""
    async with aiohttp.ClientSession() as s:
        deadline = time.monotonic() + 30
        while True:
            try:
                async with s.get(base + "/health/live") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gateway did not start")
            await asyncio.sleep(0.2)
        async with s.post(base + "/api/v1/auth/login",
                          json={"email": EMAIL, "password": PASSWORD}) as resp:
            token = str((await resp.json())["access_token"])
        h = {"Authorization": f"Bearer {token}"}
        orm = base + "/api/v1/orm"

        async def post(path: str, body: dict) -> dict:
            async with s.post(orm + path, json=body, headers=h) as resp:
                assert resp.status == 201, (path, resp.status, await resp.text())
                return dict(await resp.json())

        cat = await post("/exchanges/catalog", {"name": "fuzzex"})
        sym = await post("/symbols", {"cat_ex_id": cat["cat_ex_id"], "symbol": "BTC/USD",
                                      "base": "BTC", "quote": "USD"})
        strat = await post("/strategies/catalog", {"name": "fuzzstrat", "params": {
            "n": {"type": "int", "min": 1}}})
        ex = await post("/exchanges/user-exchanges", {"cat_ex_id": cat["cat_ex_id"],
                                                      "name": "fuzz"})
        bot = await post("/bots", {"name": "fuzzbot", "ex_ids": [ex["ex_id"]]})
        await post(f"/bots/{bot['bot_id']}/feeds", {"symbol_id": sym["symbol_id"],
                                                    "period": "minutes"})
        await post("/strategies/bot-strategies", {"bot_id": bot["bot_id"],
                                                  "cat_str_id": strat["cat_str_id"]})
        order = await post("/orders", {"ex_id": ex["ex_id"], "bot_id": bot["bot_id"],
                                       "symbol": "BTC/USD", "side": "buy",
                                       "order_type": "market", "volume": 1})
        await post("/trades", {"ex_id": ex["ex_id"], "bot_id": bot["bot_id"],
                               "order_id": order["order_id"], "symbol": "BTC/USD",
                               "side": "buy", "volume": 1, "price": 10, "roi": 1})
    return token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=10)
    parser.add_argument("--max-time", type=int, default=100, help="seconds for the fuzzing")
    parser.add_argument("--include-path-regex", default=None,
                        help="fuzz only matching paths (default: every route)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default=os.environ.get(
        "FULLON_FUZZ_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/fgw_schemathesis"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "FULLON_FUZZ_REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.database_url, args.redis_url)
        return 0
    st = schemathesis_command()
    if st is None:
        print("schemathesis is not installed (pip install -e .[dev])", file=sys.stderr)
        return 2
    asyncio.run(drop_database(args.database_url))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port),
                               "--database-url", args.database_url,
                               "--redis-url", args.redis_url], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        token = asyncio.run(seed(base))
        checks = os.environ.get("FUZZ_CHECKS", "not_a_server_error")  # "all" for conformance
        cmd = [st, "run", f"{base}/api/v1/openapi.json", "--checks", checks,
               "--header", f"Authorization: Bearer {token}",
               "--max-examples", str(args.max_examples), "--max-time", str(args.max_time),
               "--seed", "1", "--exclude-path", "/api/v1/auth/logout",
               "--request-timeout", "10", "--warnings", "off"]
        if args.include_path_regex:
            cmd += ["--include-path-regex", args.include_path_regex]
        # schemathesis keeps a cache directory in its working directory: use a temporary one.
        with tempfile.TemporaryDirectory(prefix="schemathesis-") as workdir:
            return subprocess.run(cmd, env=env, check=False, cwd=workdir).returncode
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        asyncio.run(drop_database(args.database_url))


if __name__ == "__main__":
    sys.exit(main())
