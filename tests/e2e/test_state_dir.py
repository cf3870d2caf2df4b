"""Where state lives does not depend on the directory a command starts in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.conftest import base_env

pytestmark = pytest.mark.e2e


def test_commands_from_any_directory_share_one_state(fresh_state, tmp_path, closed_ports):
    """With no settings at all, create-user run in one directory and create-api-key run in
    another find the same user (one database in the per-user data directory), and both
    log that absolute state directory; create-user says it started the embedded
    Postgres, not that it attached to one. An old ./.state from earlier versions is
    named in a warning, not silently ignored (and left untouched)."""
    data_home = fresh_state / "xdg"
    env = {**base_env(), "XDG_DATA_HOME": str(data_home),
           "FULLON_LOCAL_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{closed_ports[0]}/x",
           "FULLON_LOCAL_REDIS_URL": f"redis://127.0.0.1:{closed_ports[1]}/0"}
    env.pop("FULLON_EMBEDDED", None)
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    (here / ".state").mkdir()

    def cli(cwd, *args):
        done = subprocess.run([sys.executable, "-m", "fullon_gateway", *args], cwd=cwd,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    made = cli(here, "create-user", "--email", "wherever@example.com",
               "--password", "a long password")
    key = cli(there, "create-api-key", "--email", "wherever@example.com", "--name", "k")
    assert key.stdout.strip().splitlines()[-1].startswith("fullon_ak_")
    state = data_home / "fullon_gateway"
    for done in (made, key):
        assert f"state directory {state};" in done.stderr, done.stderr
    assert "started embedded Postgres" in made.stderr, made.stderr
    assert f"{here / '.state'} is not used: state lives in {state}" in made.stderr
    assert ".state is not used" not in key.stderr
    assert (state / "embedded" / "pgdata" / "PG_VERSION").exists()
    assert not any((here / ".state").iterdir()) and not (there / ".state").exists()
