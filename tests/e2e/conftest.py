"""Run the real server as a subprocess (``python -m fullon_gateway``) for e2e tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fullon_gateway.embedded import _free_port, shared_temp_dir
from fullon_gateway.store.pool import _with_database
from tests.conftest import RUN_ID, _worker

ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "e2e-admin-password"


@dataclass
class Server:
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a CLI sub-command against the same database and Redis."""
        done = subprocess.run(
            [sys.executable, "-m", "fullon_gateway", *args],
            env=self.env, cwd=self.env["FULLON_STATE_DIR"], capture_output=True, text=True,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{args} failed: {done.stderr}")
        return done


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Wait until /health/ready answers 200, failing fast if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/health/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # polling a subprocess we cannot await; bounded by the deadline
    raise AssertionError(f"server not ready in {timeout}s:\n{log.read_text()}")


def start_server(tmp: Path, env: dict[str, str], *args: str, **popen: Any) -> Server:
    """Start ``python -m fullon_gateway *args``; ``popen`` goes to subprocess.Popen."""
    port = _free_port()
    env = {**env, "FULLON_PORT": str(port), "FULLON_STATE_DIR": str(tmp)}
    log = tmp / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fullon_gateway", *args], env=env, cwd=tmp,
            stdout=out, stderr=subprocess.STDOUT, **popen,
        )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process, log)
    return Server(url, env, process, log)


def stop_server(server: Server, timeout: float = 20) -> int:
    server.process.send_signal(signal.SIGTERM)
    return server.process.wait(timeout)


def base_env() -> dict[str, str]:
    """This environment without FULLON_* settings. Under FULLON_TEST_EMBEDDED=1 (no
    services on the machine, simulated) a gateway given no URLs must not find the
    local ones either: it gets embedded=always."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLON_")}
    if os.environ.get("FULLON_TEST_EMBEDDED") == "1":
        env["FULLON_EMBEDDED"] = "always"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def fresh_state() -> Iterator[Path]:
    """An empty state directory that the embedded Postgres's user can reach (pytest's
    own tmp dirs are 0700), removed with everything in it afterwards."""
    state = shared_temp_dir(f"fgw-test-state-{uuid.uuid4().hex[:12]}")
    yield state
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def closed_ports() -> Iterator[tuple[int, int]]:
    """Two ports that refuse connections (bound, never listening) for the test's length."""
    socks = [socket.socket(), socket.socket()]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
    yield socks[0].getsockname()[1], socks[1].getsockname()[1]
    for sock in socks:
        sock.close()


@pytest.fixture(scope="session")
def gateway_database(servers: tuple[str, str]) -> Iterator[Any]:
    """``gateway_database(kind)``: this worker's database URL for gateway subprocesses of
    ``kind``. A gateway creates its database when it is missing; every one named here
    is dropped when the worker's session ends, so runs leave no databases behind."""
    names: set[str] = set()

    def url(kind: str) -> str:
        name = f"fgw_{kind}_{RUN_ID}_{_worker()[0]}"
        names.add(name)
        return _with_database(servers[0], name)

    yield url

    async def drop() -> None:
        admin = await asyncpg.connect(_with_database(servers[0], "postgres"))
        try:
            for name in sorted(names):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    if names:
        asyncio.run(drop())


@pytest.fixture(scope="module")
def server(servers: tuple[str, str], gateway_database: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gateway subprocess on its own database and Redis prefix, with an admin user."""
    worker, _ = _worker()
    tmp = tmp_path_factory.mktemp("e2e")
    env = base_env()
    env.update({
        "FULLON_DATABASE_URL": gateway_database("e2e"),
        "FULLON_REDIS_URL": servers[1],
        "FULLON_REDIS_PREFIX": f"e2e{RUN_ID}{worker}:",
        "FULLON_JWT_SECRET": "e2e-secret-" + "y" * 40,
        "FULLON_CONFIG": str(ROOT / "config" / "gateway.test.yaml"),
    })
    srv = start_server(tmp, env)
    srv.cli("create-user", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD, "--admin",
            check=False)
    yield srv
    if srv.process.poll() is None:
        stop_server(srv)
