"""Run a gateway tree that has no command line yet (``python -m fullon_gateway``).

    PYTHONPATH=/path/to/tree python scripts/bench/gateway_launcher.py serve
    PYTHONPATH=/path/to/tree python scripts/bench/gateway_launcher.py create-user \
        --email E --password P

Branches cut before the CLI landed (the streams branch) still have
``create_app``, ``load_settings`` and ``AuthService``; this drives them with the same
FULLON_* environment that ``harness.start_gateway`` sets. When the tree has the CLI
this just hands over to it, so the benchmark runs the real entry point whenever
there is one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path


def _fallback(argv: list[str]) -> int:
    from aiohttp import web

    from fullon_gateway.settings import load_settings, with_jwt_secret

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve")
    user = sub.add_parser("create-user")
    user.add_argument("--email", required=True)
    user.add_argument("--password", required=True)
    user.add_argument("--admin", action="store_true")
    args = parser.parse_args(argv)
    settings = with_jwt_secret(load_settings())
    if args.command in (None, "serve"):
        from fullon_gateway.app import create_app

        web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None,
                    access_log=None, shutdown_timeout=settings.grace_period)
        return 0

    async def create_user() -> None:
        import redis.asyncio as aioredis

        from fullon_gateway.auth.service import AuthService
        from fullon_gateway.store.migrate import migrate
        from fullon_gateway.store.pool import create_pool, ensure_database

        assert settings.database_url
        await ensure_database(settings.database_url)
        pool = await create_pool(settings.database_url, 1, 2)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            auth = AuthService(settings, pool, aioredis.Redis.from_url("redis://127.0.0.1:1/0"))
            row = await auth.create_user(args.email, args.password, name="",
                                         role="admin" if args.admin else "user")
            print(f"created {row['role']} {row['email']} (user_id {row['user_id']})")
        finally:
            await pool.close()

    asyncio.run(create_user())
    return 0


def main() -> int:
    import fullon_gateway

    # Check the file, not the import: an editable install of another tree can supply a
    # module this tree lacks.
    if not (Path(fullon_gateway.__file__).parent / "cli.py").exists():
        return _fallback(sys.argv[1:])
    from fullon_gateway.cli import main as cli_main

    return int(cli_main(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
