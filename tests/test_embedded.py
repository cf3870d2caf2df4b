"""Where the embedded Postgres puts its data."""

import os
import shutil

import pytest

from fullon_gateway.embedded import _pgdata_dir, shared_temp_dir


@pytest.mark.skipif(os.geteuid() != 0, reason="the pgserver user exists only for root")
def test_pgdata_moves_when_its_user_cannot_reach_the_state_dir(tmp_path):
    """As root, a state dir behind a 0700 parent is unreachable for the pgserver user, so
    the data goes under the system temp dir (the same place on every start); a reachable
    state dir is used as is."""
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    hidden.chmod(0o700)
    moved = _pgdata_dir(hidden / "state")
    assert "fullon-gateway-pgdata-" in str(moved) and not str(moved).startswith(str(hidden))
    open_dir = shared_temp_dir(f"fgw-test-open-state-{os.getpid()}")
    try:
        assert moved == _pgdata_dir(hidden / "state")
        assert _pgdata_dir(open_dir) == (open_dir / "pgdata").resolve()
    finally:
        shutil.rmtree(moved.parent, ignore_errors=True)
        shutil.rmtree(open_dir, ignore_errors=True)
