"""The command line: serve (default), migrate, create-user, create-api-key, reset-password,
demo.

Each command prints what it did, or one clear error line on stderr and a non-zero
exit status. Only parsing and wiring live here; the work is in the modules it calls.
Over 300 lines on purpose: every sub-command's parser and wiring, read side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from marshmallow import ValidationError

from fullon_gateway import __version__
from fullon_gateway.auth.identity import ADMIN_SCOPES, USER_SCOPES, Caller
from fullon_gateway.auth.service import AuthService
from fullon_gateway.embedded import resolve_dependencies
from fullon_gateway.errors import ApiError
from fullon_gateway.keys import SOCKETS
from fullon_gateway.logs import QuietAccessLogger, setup_logging
from fullon_gateway.schemas.auth import ApiKeyCreateSchema, NewUserSchema
from fullon_gateway.serving import serve
from fullon_gateway.settings import Settings, SettingsError, load_settings, with_jwt_secret
from fullon_gateway.store import users as users_db
from fullon_gateway.store.database import open_pool, prepare_database

log = logging.getLogger("fullon_gateway")


class CommandError(Exception):
    """A command failed in a way the user can act on; printed as one line."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="YAML settings file (default: gateway.yaml in the "
                        "state directory, when there is one)")
    common.add_argument("--database-url", help="postgresql://... (default: local or embedded)")
    common.add_argument("--redis-url", help="redis://... (default: local or embedded)")
    common.add_argument("--env", choices=["development", "production"])
    common.add_argument("--log-level")
    common.add_argument("--state-dir", help="where the dev JWT secret and embedded data live "
                        "(default: the per-user data directory)")

    parser = argparse.ArgumentParser(
        prog="python -m fullon_gateway", parents=[common],
        description="fullon_gateway: the front door of the fullon trading platform",
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command")

    def serving(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host")
        p.add_argument("--port", type=int)

    serving(parser)
    serving(sub.add_parser("serve", parents=[common], help="run the server (default)"))
    serving(sub.add_parser("demo", parents=[common],
                           help="seed demo data and serve with a live market simulator"))
    sub.add_parser("migrate", parents=[common], help="create or upgrade the database schema")
    user = sub.add_parser("create-user", parents=[common], help="create a user")
    user.add_argument("--email", required=True)
    user.add_argument("--password", required=True)
    user.add_argument("--name", default="")
    user.add_argument("--admin", action="store_true")
    key = sub.add_parser("create-api-key", parents=[common], help="create an API key for a user")
    key.add_argument("--email", required=True)
    key.add_argument("--name", required=True)
    key.add_argument("--scopes", default="read", help="comma separated: read,trade,ingest,admin")
    key.add_argument("--expires-at", help="ISO 8601 with offset or Z")
    reset = sub.add_parser(
        "reset-password", parents=[common],
        help="set a user's password (e.g. a fullon account whose legacy password is unhashed)",
    )
    reset.add_argument("--email", required=True)
    reset.add_argument("--password", help="the new password (default: read from stdin)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "database_url": args.database_url,
        "redis_url": args.redis_url,
        "env": args.env,
        "log_level": args.log_level,
        "state_dir": args.state_dir,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
    }
    return load_settings(config_path=args.config, overrides=overrides)


def _warn_about_old_state(settings: Settings) -> None:
    """Earlier versions kept state in ./.state: say so rather than start afresh silently."""
    if (old := Path(".state").resolve()).is_dir() and old != Path(settings.state_dir):
        log.warning("%s is not used: state lives in %s (pass --state-dir %s to use the "
                    "old one)", old, settings.state_dir, old)


async def _tune_gc(_app: web.Application) -> None:
    """Make cyclic-GC pauses rare in the serving process.

    A full collection walks every tracked object (~130 per open socket) and stalls every
    stream while it runs: 90-150 ms at 1,000 sockets, collecting nothing (docs/bench.md).
    Objects alive at start-up are frozen out of collections, and young collections run
    after 50,000 allocations instead of 700. Only the server process does this; tests
    and library users keep Python's defaults.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _event_loop(settings: Settings) -> asyncio.AbstractEventLoop:
    """uvloop's loop when wanted and installed (its C transports write a frame in about
    half the time: docs/bench.md), else asyncio's."""
    if settings.uvloop:
        try:
            import uvloop
        except ImportError:
            log.info("uvloop is not installed: serving on the asyncio loop")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _serve(settings: Settings, demo: bool = False) -> None:
    # Imported here, not at the top, for start-up time: the app (streams, handlers,
    # OpenAPI: some 200 more modules, 0.4-0.7 s measured with -X importtime) is only
    # needed to serve; migrate and the user commands start without it.
    from fullon_gateway.app import create_app

    settings = with_jwt_secret(settings)
    settings, embedded = resolve_dependencies(settings)
    try:
        app = create_app(settings)
        if demo:
            from fullon_gateway.demo import attach_demo  # as create_app above: only to serve

            attach_demo(app)
        app.on_startup.append(_tune_gc)
        serving = False

        def ready(port: int) -> None:
            nonlocal serving
            serving = True
            log.info("fullon_gateway ready: http://%s:%d (env=%s)",
                     settings.host, port, settings.env)

        async def log_shutdown(app: web.Application) -> None:
            if serving:
                log.info("shutting down: closing %d WebSocket(s), finishing requests in "
                         "flight (up to %gs)", len(app[SOCKETS]), settings.grace_period)

        app.on_shutdown.insert(0, log_shutdown)

        try:
            # The guarded listener (serving.py), not web.run_app: connection caps, JSON
            # parser errors, keep-alive and body timeouts, throttled resource-error logs.
            with asyncio.Runner(loop_factory=lambda: _event_loop(settings)) as runner:
                runner.run(serve(app, settings, access_log_class=QuietAccessLogger,
                                 on_ready=ready))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {settings.port} is in use on {settings.host} (another server "
                    "is running there; choose another with --port or FULLON_PORT)") from None
            raise
        log.info("fullon_gateway stopped")
    finally:
        if embedded is not None:
            embedded.stop()


async def _with_pool(settings: Settings, work: Any) -> Any:
    database = await prepare_database(settings)
    pool = await open_pool(settings, database, 1, 2)
    try:
        applied = [f"attach mode ({name})" for name in database.applied] if database.attached \
            else database.applied
        return await work(pool, applied)
    finally:
        await pool.close()


async def _auth_service(settings: Settings, pool: Any) -> AuthService:
    # These commands never touch Redis; the client is lazy and never connects.
    return AuthService(settings, pool, aioredis.Redis.from_url("redis://127.0.0.1:1/0"))


async def _user(pool: Any, email: str) -> Any:
    user = await users_db.by_email_with_hash(pool, email)
    if user is None:
        raise CommandError(f"no user with email {email}")
    return user


def _migrate(settings: Settings) -> None:
    async def work(_pool: Any, applied: list[str]) -> None:
        print("applied: " + ", ".join(applied) if applied else "schema is up to date")

    asyncio.run(_with_pool(settings, work))


def _create_user(settings: Settings, args: argparse.Namespace) -> None:
    try:
        data = NewUserSchema().load({"email": args.email, "password": args.password})
    except ValidationError as exc:
        raise CommandError(f"invalid user: {exc.messages}") from None
    email, password = data["email"], data["password"]

    async def work(pool: Any, _applied: list[str]) -> None:
        auth = await _auth_service(with_jwt_secret(settings), pool)
        row = await auth.create_user(email, password, name=args.name,
                                     role="admin" if args.admin else "user")
        print(f"created {row['role']} {row['email']} (user_id {row['user_id']})")

    asyncio.run(_with_pool(settings, work))


def _create_api_key(settings: Settings, args: argparse.Namespace) -> None:
    try:
        data = ApiKeyCreateSchema().load({
            "name": args.name,
            "scopes": [s.strip() for s in args.scopes.split(",") if s.strip()],
            "expires_at": args.expires_at,
        })
    except ValidationError as exc:
        raise CommandError(f"invalid api key: {exc.messages}") from None

    async def work(pool: Any, _applied: list[str]) -> None:
        user = await _user(pool, args.email)
        admin = user["role"] == "admin"
        caller = Caller(user["user_id"], user["email"], user["name"], user["role"],
                        ADMIN_SCOPES if admin else USER_SCOPES, "jwt")
        auth = await _auth_service(with_jwt_secret(settings), pool)
        created = await auth.create_api_key(caller, data["name"], data["scopes"],
                                            data["expires_at"])
        print(f"created api key {created['key_id']} for {user['email']} "
              f"with scopes {','.join(created['scopes'])} (shown once):")
        print(created["key"])

    asyncio.run(_with_pool(settings, work))


def _reset_password(settings: Settings, args: argparse.Namespace) -> None:
    password = args.password if args.password is not None else sys.stdin.readline().rstrip("\n")
    try:
        # The rules a new password follows; the e-mail is only looked up (fullon's, such as
        # admin@fullon, need not be valid addresses).
        NewUserSchema().fields["password"].deserialize(password)
    except ValidationError as exc:
        raise CommandError(f"invalid password: {exc.messages}") from None

    async def work(pool: Any, _applied: list[str]) -> None:
        user = await _user(pool, args.email)
        auth = await _auth_service(with_jwt_secret(settings), pool)
        # In attach mode the hash goes to the gateway's schema; fullon's column is untouched.
        await users_db.set_password_hash(pool, user["user_id"], await auth.passwords.hash(password))
        print(f"password set for {user['email']} (user_id {user['user_id']})")

    asyncio.run(_with_pool(settings, work))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "serve"
    try:
        settings = _settings(args)
        setup_logging(settings.log_level)
        log.info("state directory %s; config file %s", settings.state_dir,
                 settings.config_file or f"none (no {Path(settings.state_dir) / 'gateway.yaml'})")
        _warn_about_old_state(settings)
        if command in ("serve", "demo"):
            _serve(settings, demo=command == "demo")
            return 0
        settings, embedded = resolve_dependencies(settings, need_redis=False)
        try:
            if command == "migrate":
                _migrate(settings)
            elif command == "create-user":
                _create_user(settings, args)
            elif command == "create-api-key":
                _create_api_key(settings, args)
            elif command == "reset-password":
                _reset_password(settings, args)
        finally:
            if embedded is not None:
                embedded.stop()
    except (SettingsError, CommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach a dependency: {exc}", file=sys.stderr)
        return 1
    return 0
