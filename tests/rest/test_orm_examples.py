"""The REST examples run as real subprocesses against the real app and exit 0."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

from tests.rest.support import seed_catalog

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


async def _run(script: str, client, account) -> tuple[int, str]:
    url = str(client.make_url("")).rstrip("/")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples" / script), "--url", url,
        "--email", account.email, "--password", account.password,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@pytest.mark.parametrize("script", ["example_bot_management.py", "example_orders_trades.py"])
async def test_example_succeeds(client, make_account, script):
    """Each example completes every step against a seeded catalog and prints
    'all steps passed'."""
    admin = await make_account("admin")
    await seed_catalog(client, admin)
    user = await make_account()
    code, out = await _run(script, client, user)
    assert code == 0, out
    assert out.rstrip().endswith("all steps passed")


async def test_example_fails_loudly(client, make_account):
    """With a wrong password the example exits non-zero and says which step failed."""
    user = await make_account()
    user.password = "wrong password"
    code, out = await _run("example_bot_management.py", client, user)
    assert code == 1 and "FAILED" in out and "401" in out
    assert "all steps passed" not in out


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("example_*.py")))
async def test_example_exits_2_when_the_gateway_is_unreachable(script):
    """Every example, pointed at a port nobody listens on, says it cannot talk to the
    gateway and exits 2 (not 1, which means a step misbehaved; never 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connecting is refused
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "examples" / script), "--url", url,
            "--email", "nobody@example.com", "--password", "irrelevant",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": ""},
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 2, text
    assert "cannot talk to the gateway" in text and "all steps passed" not in text
