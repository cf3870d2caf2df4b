"""The gateway as an operator runs it: a subprocess started from the command line."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.e2e.conftest import base_env, start_server, stop_server

pytestmark = pytest.mark.e2e


def _get(url: str) -> tuple[int, dict]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, json.loads(resp.read())


def test_starts_with_no_configuration(fresh_state):
    """`python -m fullon_gateway` with no settings at all serves /health (local or embedded
    dependencies) and exits 0 on SIGTERM."""
    srv = start_server(fresh_state, base_env())
    status, body = _get(srv.url + "/health")
    assert status == 200 and body["status"] == "ok", body
    assert (fresh_state / "jwt_secret").exists(), "a development secret is generated and kept"
    assert stop_server(srv) == 0


def test_starts_embedded_dependencies():
    """With embedded=always the gateway starts its own Postgres and Redis from Python
    packages, says so in one log line, serves /health, and stops them on exit."""
    import shutil
    import uuid

    from fullon_gateway.embedded import shared_temp_dir

    state = shared_temp_dir(f"fgw-e2e-embedded-{uuid.uuid4().hex[:8]}")
    try:
        env = {**base_env(), "FULLON_EMBEDDED": "always"}
        srv = start_server(state, env)
        status, body = _get(srv.url + "/health")
        assert status == 200 and body["checks"]["postgres"]["ok"]
        assert body["checks"]["redis"]["ok"]
        assert stop_server(srv) == 0
        log = srv.log.read_text()
        assert "started embedded Postgres and Redis" in log
        assert (state / "embedded" / "pgdata" / "PG_VERSION").exists()
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_production_without_secret_is_refused(tmp_path):
    """FULLON_ENV=production with no JWT secret stops start-up with one clear sentence."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "fullon_gateway"], env={**base_env(), "FULLON_ENV": "production"},
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert "FULLON_JWT_SECRET is required" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_commands(server):
    """migrate, create-user and create-api-key print what they did; bad input exits non-zero."""
    assert "up to date" in server.cli("migrate").stdout
    out = server.cli("create-user", "--email", "cli@example.com", "--password", "a-long-password",
                     "--name", "Cli").stdout
    assert "created user cli@example.com" in out
    dup = server.cli("create-user", "--email", "cli@example.com", "--password", "a-long-password",
                     check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    key = server.cli("create-api-key", "--email", "cli@example.com", "--name", "k",
                     "--scopes", "read,trade").stdout
    assert key.strip().splitlines()[-1].startswith("fullon_ak_")
    refused = server.cli("create-api-key", "--email", "cli@example.com", "--name", "k",
                         "--scopes", "admin", check=False)
    assert refused.returncode == 1 and "admin" in refused.stderr
    missing = server.cli("create-api-key", "--email", "nobody@example.com", "--name", "k",
                         check=False)
    assert missing.returncode == 2 and "no user" in missing.stderr


def test_sigterm_finishes_in_flight_request(tmp_path, server):
    """A request being handled when SIGTERM arrives is still answered, new connections
    are refused, and the process exits 0.

    Password hashing is made slow (~1 s) so the login handler is surely still running
    when the signal lands."""
    import signal
    import socket
    import urllib.request

    from tests.e2e.conftest import start_server

    env = {**server.env, "FULLON_ARGON2_TIME_COST": "8", "FULLON_ARGON2_MEMORY_KIB": "65536"}
    srv = start_server(tmp_path, env)
    host, port = "127.0.0.1", int(srv.url.rsplit(":", 1)[1])
    body = b'{"email": "nobody@example.com", "password": "wrong-password"}'
    sock = socket.create_connection((host, port), timeout=20)
    sock.sendall(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    # The server answers requests in arrival order of their bytes: once a later request
    # on a second connection is answered, the login above is being handled.
    with urllib.request.urlopen(srv.url + "/health/live", timeout=10) as resp:
        assert resp.status == 200
    srv.process.send_signal(signal.SIGTERM)
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
    assert b"invalid_credentials" in reply
    assert srv.process.wait(20) == 0
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=1).close()


def test_busy_port_is_one_clear_line(tmp_path, server):
    """Starting on a port something already listens on exits non-zero with
    "port N is in use" (no traceback), never having logged "ready"."""
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "fullon_gateway"],
            env={**server.env, "FULLON_PORT": str(port), "FULLON_STATE_DIR": str(tmp_path)},
            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"error: port {port} is in use" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "ready" not in done.stderr, done.stderr
    assert "shutting down" not in done.stderr  # it never served


def test_start_and_stop_are_logged(tmp_path, server):
    """The log names the absolute state directory and config file at start, says
    "ready" with the bound URL, and logs the shutdown."""
    srv = start_server(tmp_path, {**server.env, "FULLON_LOG_LEVEL": "INFO"})
    log = srv.log.read_text()
    assert f"state directory {tmp_path};" in log, log
    assert f"config file {server.env['FULLON_CONFIG']}" in log, log
    assert f"fullon_gateway ready: {srv.url}" in log, log
    assert stop_server(srv) == 0
    log = srv.log.read_text()
    assert "shutting down: closing" in log and "fullon_gateway stopped" in log, log
