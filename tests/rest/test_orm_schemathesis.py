"""schemathesis against the generated spec: no /api/v1/orm route answers with a 5xx."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from fullon_gateway.store.pool import _with_database
from tests.conftest import RUN_ID, _worker

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _schemathesis() -> str | None:
    here = Path(sys.executable).parent
    return next((str(here / n) for n in ("schemathesis", "st") if (here / n).exists()),
                shutil.which("schemathesis"))


@pytest.mark.skipif(_schemathesis() is None, reason="schemathesis not installed")
async def test_no_server_errors_under_fuzzing(settings):
    """Fuzzing every /api/v1/orm operation (coverage, fuzzing and stateful phases, as an
    admin, on seeded data) finds no response with a 5xx status. The fuzzed gateway uses
    the servers the suite chose (a database of its own on them), never a default port."""
    worker, _ = _worker()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "ci" / "schemathesis_rest.py"),
        "--max-examples", "5", "--max-time", "45", "--include-path-regex", "^/api/v1/orm/",
        "--redis-url", settings.redis_url,
        "--database-url", _with_database(settings.database_url, f"fgw_fuzz_{RUN_ID}_{worker}"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 150)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
