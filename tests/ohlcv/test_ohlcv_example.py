"""examples/example_ohlcv.py runs green against the real app on a real port."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from fullon_gateway.app import create_app
from fullon_gateway.keys import AUTH

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example_ohlcv.py"

pytestmark = pytest.mark.e2e


async def run_example(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, "PYTHONPATH": ""})
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode()


async def test_example_passes_with_login_and_with_key(aiohttp_server, settings):
    """The example ingests, re-ingests and checks three timeframes, exiting 0 with
    'all steps passed', both logged in as an admin and with an ingest+read key; with a
    wrong password it exits non-zero."""
    server = await aiohttp_server(create_app(settings))
    url = str(server.make_url("")).rstrip("/")
    await server.app[AUTH].create_user("ohlcv-admin@example.com", "admin-password-123",
                                       name="admin", role="admin")
    code, out = await run_example("--url", url, "--email", "ohlcv-admin@example.com",
                                  "--password", "admin-password-123")
    assert code == 0 and "all steps passed" in out, out

    import aiohttp
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/api/v1/auth/login", json={
                "email": "ohlcv-admin@example.com", "password": "admin-password-123"}) as r:
            token = (await r.json())["access_token"]
        async with session.post(f"{url}/api/v1/orm/api_keys/me",
                                json={"name": "ex", "scopes": ["read", "ingest"]},
                                headers={"Authorization": f"Bearer {token}"}) as r:
            key = (await r.json())["key"]
    code, out = await run_example("--url", url, "--api-key", key)
    assert code == 0 and "all steps passed" in out, out

    code, out = await run_example("--url", url, "--email", "ohlcv-admin@example.com",
                                  "--password", "wrong")
    assert code != 0 and "all steps passed" not in out
