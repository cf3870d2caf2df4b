"""The README's commands work as written: they are taken from README.md itself (its
```bash blocks, in order) and run by bash against a fresh state directory, on a machine
whose local Postgres and Redis are unreachable (the local default ports point at closed
ports), so the zero-configuration path with embedded servers is what runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fullon_gateway.embedded import _free_port
from tests.e2e.conftest import ROOT, base_env

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
# Set-up steps the test's own environment has already done: this interpreter is a venv
# with the project installed (dev extras included), and `pytest` is the suite running
# this very test. They are checked to be documented, not run again.
SETUP = re.compile(r"^\s*(python3 -m venv \.venv|\. \.venv/bin/activate|pip install|pytest\b)")
# A command that runs the server: started in the background, like a second terminal.
SERVER = re.compile(r"^\s*python -m fullon_gateway(\s+(serve|demo))?(\s+--\S+(\s+[^-\s]\S*)?)*\s*$")

PRELUDE = r"""
set -euo pipefail
trap 'echo "README command failed (exit $?): $BASH_COMMAND" >&2' ERR
# An HTTP error is a failed command (curl -s alone exits 0 on a 401).
curl() { command curl --fail-with-body --max-time 30 "$@"; }
GATEWAY_PID=
stop_gateway() {
    if [ -n "$GATEWAY_PID" ]; then
        kill -TERM "$GATEWAY_PID"
        local status=0
        wait "$GATEWAY_PID" || status=$?
        GATEWAY_PID=
        if [ "$status" != 0 ]; then echo "gateway exited $status on SIGTERM" >&2; return 1; fi
    fi
}
trap 'stop_gateway || true' EXIT
start_gateway() {
    stop_gateway
    LOG="$LOG_DIR/gateway-$RANDOM.log"
    "$@" > "$LOG" 2>&1 &
    GATEWAY_PID=$!
    # Polls a background process's log (there is no event to wait on); bounded.
    for _ in $(seq 1200); do
        if grep -q "fullon_gateway ready" "$LOG"; then echo "started: $*"; return 0; fi
        if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
            cat "$LOG" >&2; GATEWAY_PID=; return 1
        fi
        sleep 0.1
    done
    cat "$LOG" >&2
    return 1
}
"""


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def script_from_readme(text: str, port: int) -> str:
    """The README's bash blocks as one script: set-up lines skipped, server commands
    started in the background, the documented port replaced by ``port``."""
    out = [PRELUDE]
    for number, block in enumerate(bash_blocks(text), 1):
        out.append(f'echo "### README block {number}" >&2')
        for line in block.splitlines():
            line = line.replace("localhost:8000", f"localhost:{port}")
            line = line.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
            if SETUP.match(line):
                out.append(f": set-up done by the test: {line.strip()!r}")
            elif SERVER.match(line):
                out.append(f"start_gateway {line.strip()}")
            else:
                out.append(line)
    out.append("stop_gateway")
    return "\n".join(out) + "\n"


def readme_env(state: Path, closed: tuple[int, int], port: int) -> dict[str, str]:
    """A newcomer's shell: the venv's python first on PATH, no FULLON_* settings but a
    free port, and the local default Postgres and Redis unreachable."""
    env = base_env()
    env.update({
        "FULLON_PORT": str(port),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        "FULLON_STATE_DIR": str(state),
        "FULLON_LOCAL_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{closed[0]}/fullon_gateway",
        "FULLON_LOCAL_REDIS_URL": f"redis://127.0.0.1:{closed[1]}/0",
        # The demo's history is loaded in the background; a day is plenty here.
        "FULLON_DEMO_HISTORY_DAYS": "1",
        "LOG_DIR": str(state),
    })
    env.pop("FULLON_EMBEDDED", None)  # the "auto" path: probe (closed ports), then embed
    return env


def test_readme_documents_the_newcomer_steps():
    """The README has the venv and install steps, sets ACCESS_TOKEN before using it,
    says which commands need the demo, and links no file outside the repository."""
    text = README.read_text()
    commands = "\n".join(bash_blocks(text))
    for step in ("python3 -m venv .venv", ". .venv/bin/activate", "pip install -e .",
                 "python -m fullon_gateway\n", "python -m fullon_gateway demo"):
        assert step in commands + "\n", step
    assert commands.index("ACCESS_TOKEN=") < commands.index("$ACCESS_TOKEN")
    assert "need the demo" in text
    assert "shared/" not in text
    for link in re.findall(r"\]\(([^)#]+)", text):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), link


def test_readme_commands_work_as_written(fresh_state, closed_ports):
    """Every command of the README's bash blocks, run in order by bash with `set -e`
    (curl failing on HTTP errors), exits 0: start the server, create a user, log in,
    verify with the token and with an API key, list bots, switch to the demo, read
    candles and run the stream example. Fails naming the command that failed."""
    port = _free_port()
    script = script_from_readme(README.read_text(), port)
    assert script.count("start_gateway python -m fullon_gateway") == 2, script
    proc = subprocess.Popen(
        ["bash", "-c", script], cwd=ROOT, env=readme_env(fresh_state, closed_ports, port),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    logs = "".join(p.read_text() for p in sorted(fresh_state.glob("gateway-*.log")))
    assert proc.returncode == 0, out[-6000:] + "\n--- gateway logs ---\n" + logs[-6000:]
    assert '"email": "you@example.com"' in out or '"email":"you@example.com"' in out, out
    assert '"auth_type":"api_key"' in out.replace(" ", ""), out
    assert '"timeframe":"1h"' in out.replace(" ", ""), out
    assert "all steps passed" in out, out
    # The zero-configuration path really ran: the local ports were closed.
    assert "started embedded Postgres and Redis" in logs, logs
    # create-user and create-api-key ran beside the server: they say they attached.
    assert out.count("attached to embedded Postgres") == 2, out
    assert "started embedded Postgres" not in out, out
    assert logs.count("fullon_gateway stopped") == 2, logs
    assert f"state directory {fresh_state}" in logs, logs
