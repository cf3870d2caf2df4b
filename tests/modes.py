"""Running a test against both database modes.

``@every_db_mode`` runs a test three times: on the gateway's own schema (standalone),
and attached to a fullon database of each shape (fullon's install script, and the
newer ORM's additions): the same REST and stream code must pass the same tests.
"""

from __future__ import annotations

import os

import pytest

DB_MODES = ("standalone", "attach-base", "attach-orm")
ATTACH_MODES = ("attach-base", "attach-orm")

every_db_mode = pytest.mark.parametrize("db_mode", DB_MODES, indirect=True)
attach_modes = pytest.mark.parametrize("db_mode", ATTACH_MODES, indirect=True)


def standalone_only(reason: str) -> pytest.MarkDecorator:
    """Skips a test in the ``FULLON_TEST_DB_MODE`` survey (every test attached) when what
    it checks exists only on the gateway's own schema; ``reason`` says what."""
    mode = os.environ.get("FULLON_TEST_DB_MODE", "standalone")
    return pytest.mark.skipif(mode != "standalone", reason=f"standalone only: {reason}")
