"""The examples are executable contracts: each must pass against a running server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT

pytestmark = pytest.mark.e2e


def run_example(name: str, server, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), "--url", server.url,
         "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD, *extra],
        env=server.env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("name", ["example_jwt_login.py", "example_api_key_auth.py"])
def test_example_passes(server, name):
    """The example runs every step against the real server and exits 0."""
    done = run_example(name, server)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all steps passed" in done.stdout


def test_example_fails_loudly_on_wrong_credentials(server):
    """An example whose first step fails exits non-zero (it never reports success)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "example_jwt_login.py"), "--url", server.url,
         "--email", ADMIN_EMAIL, "--password", "wrong-password"],
        env=server.env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "all steps passed" not in done.stdout
