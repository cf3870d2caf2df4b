"""Fault tests: gateway subprocesses with shrunk limits, and raw-socket clients.

A hostile client in these tests connects from 127.0.0.2 (any 127/8 address reaches a
listener on 127.0.0.1 under Linux), so the caps it hits are its own address's, and
the well-behaved client on 127.0.0.1 shows whether anyone else is still served.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import resource
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fullon_gateway.store.pool import _with_database
from tests.conftest import RUN_ID, _worker
from tests.e2e.conftest import ROOT, Server, base_env, start_server

ATTACKER = "127.0.0.2"
EMAIL, PASSWORD = "scale@example.com", "scale-out-password"


def gateway_env(servers: tuple[str, str], **settings: Any) -> tuple[dict[str, str], str]:
    """Environment for a gateway subprocess on a fresh database; (env, database name)."""
    worker, _ = _worker()
    name = f"fgw_fault_{RUN_ID}_{worker}_{uuid.uuid4().hex[:6]}"
    env = base_env()
    env.update({
        "FULLON_DATABASE_URL": _with_database(servers[0], name),
        "FULLON_REDIS_URL": servers[1],
        "FULLON_REDIS_PREFIX": f"flt{RUN_ID}{worker}{uuid.uuid4().hex[:4]}:",
        "FULLON_JWT_SECRET": "fault-secret-" + "z" * 40,
        "FULLON_CONFIG": str(ROOT / "config" / "gateway.test.yaml"),
        "FULLON_LOG_LEVEL": "INFO",
    })
    for key, value in settings.items():
        env["FULLON_" + key.upper()] = str(value)
    return env, name


def drop_database(servers: tuple[str, str], name: str) -> None:
    async def drop() -> None:
        admin = await asyncpg.connect(_with_database(servers[0], "postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    # Its own thread: the caller may be an async test with a running loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, drop()).result()


@contextlib.contextmanager
def gateway(servers: tuple[str, str], tmp: Path, *, file_limit: int | None = None,
            **settings: Any) -> Iterator[Server]:
    """A gateway subprocess with these settings; stopped (SIGTERM, then kill) and its
    database dropped on exit."""
    env, name = gateway_env(servers, **settings)
    preexec = None
    if file_limit is not None:
        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (file_limit, file_limit))
    srv = start_server(tmp, env, preexec_fn=preexec) if preexec else start_server(tmp, env)
    try:
        yield srv
    finally:
        if srv.process.poll() is None:
            srv.process.terminate()
            try:
                srv.process.wait(30)
            except Exception:
                srv.process.kill()
                srv.process.wait(10)
        drop_database(servers, name)


async def raw_exchange(port: int, data: bytes, *, source: str = "127.0.0.1",
                       timeout: float = 10.0) -> bytes:
    """Send raw bytes, return everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(data)
        async with asyncio.timeout(timeout):
            return await reader.read()
    finally:
        writer.close()


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a raw HTTP/1.1 answer, after any 100 Continue."""
    while raw.startswith(b"HTTP/1.1 100"):
        raw = raw.partition(b"\r\n\r\n")[2]
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, headers, body


@pytest.fixture
def port_of() -> Any:
    def port(server: Server) -> int:
        return int(server.url.rsplit(":", 1)[1])

    return port


@pytest.fixture
def two_gateways(servers, tmp_path):
    """Gateways A and B: same database, same Redis and prefix, separate processes."""
    env, name = gateway_env(servers, trusted_proxies="127.0.0.1")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = start_server(tmp_path / "a", env)
    b = start_server(tmp_path / "b", env)
    a.cli("create-user", "--email", EMAIL, "--password", PASSWORD)
    try:
        yield a, b
    finally:
        for srv in (a, b):
            srv.process.terminate()
            srv.process.wait(30)
        drop_database(servers, name)


