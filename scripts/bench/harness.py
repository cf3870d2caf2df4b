"""Shared by the benchmarks: start servers as subprocesses and drive HTTP load.

The load generator is one asyncio client with N concurrent workers on a keep-alive
connection pool. It shares the machine's two cores with the server, the same for the
baseline and for the gateway, so ratios are meaningful even where absolutes drift.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode}) for {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} not ready")


@dataclass
class Proc:
    url: str
    proc: subprocess.Popen[bytes]
    env: dict[str, str]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_bare() -> Proc:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts/bench/bare_server.py"), str(port)])
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/bare", proc)
    return Proc(url, proc, {})


def gateway_command(pythonpath: str) -> list[str]:
    """How to run the gateway tree at ``pythonpath``: its CLI, or the bench launcher for
    trees cut before the CLI existed (see gateway_launcher.py)."""
    if (Path(pythonpath) / "fullon_gateway" / "__main__.py").exists():
        return [sys.executable, "-m", "fullon_gateway"]
    return [sys.executable, str(ROOT / "scripts/bench/gateway_launcher.py")]


# The databases start_gateway named itself (no BENCH_DATABASE_URL): each gateway creates
# its own when missing, and they are dropped when the benchmark's process exits.
_OWN_DATABASES: set[str] = set()


def _drop_own_databases() -> None:
    if not _OWN_DATABASES:
        return

    async def drop() -> None:
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            for name in sorted(_OWN_DATABASES):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    try:
        asyncio.run(drop())
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"bench databases {sorted(_OWN_DATABASES)} not dropped: {exc!r}", file=sys.stderr)


atexit.register(_drop_own_databases)


def start_gateway(tag: str, extra_env: dict[str, str] | None = None, *args: str,
                  gateway_path: str | None = None) -> Proc:
    """The real gateway (``python -m fullon_gateway``) on its own database and prefix.

    ``gateway_path`` runs another tree's gateway (another branch's worktree) instead of
    this one's."""
    port = free_port()
    state = Path(os.environ.get("TMPDIR", "/tmp")) / f"fgw-bench-{tag}"
    state.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLON_")}
    database_url = os.environ.get("BENCH_DATABASE_URL")
    if database_url is None:
        _OWN_DATABASES.add(f"fgw_bench_{tag}")
        database_url = f"postgresql://postgres@127.0.0.1:5432/fgw_bench_{tag}"
    env.update({
        "PYTHONPATH": str(Path(gateway_path).resolve()) if gateway_path else str(ROOT),
        "FULLON_PORT": str(port),
        "FULLON_STATE_DIR": str(state),
        "FULLON_DATABASE_URL": database_url,
        "FULLON_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "FULLON_REDIS_PREFIX": f"bench{tag}:",
        "FULLON_JWT_SECRET": "bench-secret-" + "z" * 40,
        "FULLON_LOG_LEVEL": "WARNING",
        # A shared Redis must not be reconfigured (CONFIG SET); benches that need
        # keyspace notifications start their own redis-server and pass "configure".
        "FULLON_KEYSPACE_EVENTS": "off",
        **(extra_env or {}),
    })
    proc = subprocess.Popen([*gateway_command(env["PYTHONPATH"]), *args], env=env, cwd=state)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health/live", proc)
    return Proc(url, proc, env)


def cli(gateway: Proc, *args: str) -> str:
    done = subprocess.run([*gateway_command(gateway.env["PYTHONPATH"]), *args], env=gateway.env,
                          cwd=gateway.env["FULLON_STATE_DIR"], capture_output=True, text=True,
                          check=False)
    return done.stdout


def start_script(script: str, *args: str) -> Proc:
    """A baseline server ``scripts/bench/<script> PORT *args`` serving /health/live."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts/bench" / script), str(port),
                             *args])
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health/live", proc)
    return Proc(url, proc, {})


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB (/proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (/proc/<pid>/stat)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (/proc/stat)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first[:8]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def line(self, name: str) -> str:
        return (f"{name:<34} {self.rps:>9.0f} req/s  p50 {self.pct(50):6.2f} ms  "
                f"p99 {self.pct(99):6.2f} ms  errors {self.errors}")


async def load(method: str, url: str, *, concurrency: int, seconds: float,
               headers: dict[str, str] | None = None, json: Any = None) -> LoadResult:
    """Hit one URL as fast as ``concurrency`` workers can for ``seconds``; count 2xx."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                async with session.request(method, url, headers=headers, json=json) as resp:
                    await resp.read()
                    if resp.status < 300:
                        latencies.append(time.perf_counter() - start)
                    else:
                        errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return LoadResult(len(latencies), errors, elapsed, latencies)


def _wrk_ms(text: str) -> float:
    value = float(text.rstrip("unms"))
    if text.endswith("us"):
        return value / 1000
    if text.endswith("ms"):
        return value
    return value * 1000  # seconds


async def wrk(method: str, url: str, *, concurrency: int, seconds: float,
              headers: dict[str, str] | None = None, json: Any = None) -> LoadResult:
    """The same measurement with wrk (C, one thread): far less client CPU per request,
    so more of the two cores go to the server. Used when wrk is on PATH."""
    import json as jsonlib
    import re
    import shutil
    import tempfile

    assert shutil.which("wrk")
    script = ""
    if json is not None:
        script = (f"wrk.method = {jsonlib.dumps(method)}\n"
                  f"wrk.body = {jsonlib.dumps(jsonlib.dumps(json))}\n"
                  'wrk.headers["Content-Type"] = "application/json"\n')
    elif method != "GET":
        script = f"wrk.method = {jsonlib.dumps(method)}\n"
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, int(seconds))}s", "--latency"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    cmd += ["-s", fh.name, url]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    out = (await proc.communicate())[0].decode()
    os.unlink(fh.name)
    total = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    secs = _wrk_ms(re.search(r"requests in ([\d.]+\w+),", out)[1]) / 1000  # type: ignore[index]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad[1]) if bad else 0
    p50 = _wrk_ms(re.search(r"50%\s+([\d.]+\w+)", out)[1]) / 1000  # type: ignore[index]
    p99 = _wrk_ms(re.search(r"99%\s+([\d.]+\w+)", out)[1]) / 1000  # type: ignore[index]
    # wrk reports percentiles, not samples: keep a two-point sample that reproduces them.
    return LoadResult(total - errors, errors, secs, [p50] * 98 + [p99] * 2)


async def drive(method: str, url: str, **kw: Any) -> LoadResult:
    """wrk when installed (``apt-get install wrk``), else the asyncio client."""
    import shutil

    if shutil.which("wrk") and os.environ.get("BENCH_CLIENT", "wrk") == "wrk":
        return await wrk(method, url, **kw)
    return await load(method, url, **kw)


def median_of(results: list[LoadResult]) -> float:
    return statistics.median(r.rps for r in results)
