"""Embedded servers left running by a gateway that died (``kill -9``), found safely.

Only processes tied to our own state directory are ever considered: a pid counts when
its pid file lives there and the process still points there (its command line for
Postgres, its working directory for redis-server). The machine's own Postgres and
Redis, and other gateways' live servers, are never touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import psutil


def reap_orphan_redis(directory: Path) -> list[int]:
    """Stop redis-servers left running in ``directory`` by gateways that died.

    Only a process named by an owner file whose gateway pid is gone, that is still a
    redis-server and whose working directory is ``directory`` (redis-server changes into
    its --dir) is stopped: never the machine's Redis, nor a live gateway's. Returns the
    pids stopped.
    """
    reaped = []
    directory = directory.resolve()
    for owner in sorted(directory.glob("redis-*.json")):
        gateway_pid = owner.stem.removeprefix("redis-")
        if gateway_pid.isdigit() and psutil.pid_exists(int(gateway_pid)):
            continue  # its gateway is alive: not an orphan
        try:
            pid = int(json.loads(owner.read_text())["pid"])
            proc = psutil.Process(pid)
            ours = "redis-server" in proc.name() and Path(proc.cwd()) == directory
        except (psutil.Error, OSError, ValueError, KeyError, TypeError):
            ours = False
        if ours:
            proc.terminate()
            try:
                proc.wait(5)
            except psutil.TimeoutExpired:
                proc.kill()
            reaped.append(pid)
        owner.unlink(missing_ok=True)
    return reaped


def postgres_holders(pgdata: Path) -> tuple[int | None, list[int]]:
    """(pid of the postmaster running on ``pgdata``, live gateway pids using it).

    The pid counts only when postmaster.pid names this data directory and that process's
    command line does too (a stale file's pid may belong to anything by now). Dead
    holders are pruned from pgserver's handle list: a ``kill -9`` leaves its pid there,
    and pgserver would then never stop the server.
    """
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid = int(lines[0])
        running = (Path(lines[1]).resolve() == pgdata
                   and str(pgdata) in psutil.Process(pid).cmdline())
    except (OSError, ValueError, IndexError, psutil.Error):
        return None, []
    if not running:
        return None, []
    handles = pgdata / ".handle_pids.json"
    try:
        pids = [int(p) for p in json.loads(handles.read_text() or "[]")]
    except (OSError, ValueError, TypeError):
        pids = []
    live = [p for p in pids if psutil.pid_exists(p)]
    if live != pids:
        handles.write_text(json.dumps(live))
    return pid, live
