"""schemathesis against the generated spec: no /api/v1/orm route answers with a 5xx."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


@pytest.mark.skipif(shutil.which("schemathesis") is None, reason="schemathesis not installed")
async def test_no_server_errors_under_fuzzing(settings):
    """Fuzzing every /api/v1/orm operation (coverage, fuzzing and stateful phases, as an
    admin, on seeded data) finds no response with a 5xx status."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "ci" / "schemathesis_rest.py"),
        "--max-examples", "5", "--max-time", "45", "--include-path-regex", "^/api/v1/orm/",
        "--redis-url", settings.redis_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 150)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
