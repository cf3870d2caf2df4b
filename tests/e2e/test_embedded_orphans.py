"""Embedded servers left behind by a gateway killed with ``kill -9`` are dealt with on the
next start: the Postgres is adopted (and stopped when the new gateway exits), the Redis
is stopped; each with a log line. Nothing outside the state directory is touched."""

from __future__ import annotations

import contextlib
import json
import os
import signal

import psutil
import pytest

from tests.e2e.conftest import base_env, start_server, stop_server

pytestmark = pytest.mark.e2e


def _embedded_pids(state) -> tuple[int, int]:
    pgdata = state / "embedded" / "pgdata"
    postmaster = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    [owner] = (state / "embedded" / "redis").glob("redis-*.json")
    return postmaster, int(json.loads(owner.read_text())["pid"])


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_orphans_of_a_killed_gateway_are_adopted_or_stopped(fresh_state):
    """After kill -9 the embedded Postgres and Redis keep running (the orphans exist);
    the next start adopts that Postgres and stops that Redis, saying so, and when it
    exits the adopted Postgres stops too."""
    env = {**base_env(), "FULLON_EMBEDDED": "always"}
    first = start_server(fresh_state, env)
    pg_pid, redis_pid = _embedded_pids(fresh_state)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(10)
    assert psutil.pid_exists(pg_pid) and not _gone(pg_pid), "postgres died with its gateway"
    assert psutil.pid_exists(redis_pid) and not _gone(redis_pid), "redis died with its gateway"

    second = start_server(fresh_state, env)
    log = second.log.read_text()
    assert f"adopted the embedded postgres left running in {fresh_state}" in log, log
    assert f"(pid {pg_pid})" in log
    assert f"stopped embedded redis pid {redis_pid}" in log, log
    assert _gone(redis_pid)
    assert _embedded_pids(fresh_state)[0] == pg_pid, "the orphan is used, not replaced"
    assert stop_server(second) == 0
    with contextlib.suppress(psutil.NoSuchProcess):  # not our child: psutil polls it
        psutil.Process(pg_pid).wait(15)
    assert _gone(pg_pid), "the adopted postgres is stopped by the gateway that adopted it"
