"""Fan-out benchmark (issue 3): the gateway's streams beside two baselines, one run.

    python scripts/bench/fanout.py [--quick] [--gateway-path /path/to/tree]
                                   [--old-gateway-path /path/to/older/tree]
                                   [--publisher contract|gateway] [--json out.json]

Servers, all started at once and measured in turns on the same load:
  (a) the gateway (``python -m fullon_gateway``, or gateway_launcher.py for trees
      without the CLI), JWT in ``?token=``; (a+batch) a second gateway process (same
      database and prefix), sockets with ``&batch=1``;
  (b) baseline_per_socket.py: one Redis subscription per WebSocket;
  (c) baseline_raw_fanout.py: one shared subscriber, one pre-encoded frame per
      message per socket, per-socket writer tasks (the one-send-per-message ceiling);
  (a_old) with --old-gateway-path: another tree's gateway (an older commit, say), on
      its own database, prefix and exchange, measured in the same turns as (a).
Each server gets its own Redis prefix (a and a+batch their own exchange), so a
publish reaches only the server being measured.

Load: publisher.py in its own process does what fullon_cache ``set_ticker`` does
(HSET tickers:{exchange} + PUBLISH ticker_updates:{exchange}:{symbol}, the docs/contract.md
section 8 contract) at a fixed rate, with a publish timestamp and counter in the Tick.
Receivers: wsclient.py, N sockets spread over ``--clients`` processes, each socket
subscribed to one symbol (socket i -> symbol i mod channels).

A load step publishes for warm-up + ``--seconds``; the messages published after the
warm-up are measured. A step is clean when >= 99% of their deliveries (sum over
messages of the sockets subscribed to its symbol) arrive by the end of the window +
``--grace``. Offered delivery rates climb geometrically (``--factor``); a server
stops climbing at its first failed step (a near miss is retried once), then one
bisection step refines the clean rate. Servers take turns at every step, so drift on a
noisy machine hits all of them. Latency is publish->receive (same clock), p50/p99 over
all measured frames of the step, at the clean rate and at half of it.

Also: connect + auth + subscribe + first snapshot time for 1,000 sockets (one at a
time, then 10 in flight: ``--connect-concurrency``), and RSS per idle subscribed socket
at 5,000 sockets (VmRSS before/after). Every wait is bounded; the full run takes
< 10 min, ``--quick`` < 2 min. docs/bench.md says how to read the output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import harness
import publisher as publisher_mod
import wsclient

PASSWORD = "bench-password-123"
TARGETS = {  # issue 3
    "a/c": 0.7, "a/b": 2.0, "a_batch/c": 1.3,
    "p99_half_100": 10.0, "p99_half_1000": 50.0, "connect_p99": 20.0, "kb_per_socket": 40.0,
}
LABELS = {"a": "(a) gateway", "a_old": "(a_old) gateway, old tree",
          "a_batch": "(a) gateway ?batch=1",
          "a2": "(a) 2 gateway processes",
          "b": "(b) per-socket redis sub", "c": "(c) raw fan-out ceiling"}


# -- child processes -----------------------------------------------------------------------
class Child:
    """A multiprocessing child served over a pipe: one request, one reply."""

    def __init__(self, target: Any, *args: Any) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child_end = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child_end, *args), daemon=True)
        self.proc.start()

    def send(self, cmd: dict[str, Any]) -> None:
        self.pipe.send(cmd)

    def recv(self, timeout: float) -> dict[str, Any]:
        if not self.pipe.poll(timeout):
            raise TimeoutError(f"child {self.proc.pid} did not answer in {timeout:.0f} s")
        reply = self.pipe.recv()
        if "error" in reply:
            raise RuntimeError(f"child {self.proc.pid}: {reply['error']}")
        return reply

    def call(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.send(cmd)
        return self.recv(timeout)

    def stop(self) -> None:
        with contextlib.suppress(TimeoutError, RuntimeError, OSError, EOFError):
            self.call({"op": "quit"}, 10)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()


class Clients:
    def __init__(self, count: int, use_uvloop: bool) -> None:
        self.workers = [Child(wsclient.worker, use_uvloop) for _ in range(count)]

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.proc.pid]

    def all(self, cmd: dict[str, Any], timeout: float = 30) -> list[dict[str, Any]]:
        for w in self.workers:
            w.send(cmd)
        return [w.recv(timeout) for w in self.workers]

    def connect(self, group: str, url: str, specs: list[tuple[str, bytes]], concurrency: int,
                timeout: float) -> tuple[list[float], list[str], float]:
        host, port = url.split("//")[1].split(":")
        began = time.perf_counter()
        k = len(self.workers)
        for i, w in enumerate(self.workers):
            w.send({"op": "connect", "group": group, "host": host, "port": int(port),
                    "specs": specs[i::k], "concurrency": max(1, concurrency // k),
                    "timeout": timeout})
        times: list[float] = []
        errors: list[str] = []
        for w in self.workers:
            r = w.recv(timeout + 30)
            times += r["times"]
            errors += r["errors"]
        return times, errors, time.perf_counter() - began

    def stats(self, hist: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"count": 0, "late": 0, "any": 0, "reordered": 0, "closed": 0,
                               "close_codes": Counter(), "hist": [0] * wsclient.HIST_SIZE}
        for r in self.all({"op": "stats", "hist": hist}):
            for key in ("count", "late", "any", "reordered", "closed"):
                out[key] += r[key]
            out["close_codes"].update(r["close_codes"])
            if hist:
                out["hist"] = [a + b for a, b in zip(out["hist"], r["hist"], strict=True)]
        return out

    def close(self, group: str) -> None:
        self.all({"op": "close", "group": group}, 60)

    def stop(self) -> None:
        for w in self.workers:
            w.stop()


# -- servers and variants -------------------------------------------------------------------
@dataclass
class Variant:
    name: str
    proc: harness.Proc
    prefix: str
    exchange: str
    path: str
    more: list[harness.Proc] = field(default_factory=list)  # further processes (a2)
    best: float | None = None  # highest clean offered deliveries/s
    fail: float | None = None  # lowest failed offered deliveries/s
    alive: bool = True
    at_best: dict[str, Any] | None = None
    at_half: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.name]

    @property
    def pid(self) -> int:
        return self.proc.proc.pid

    @property
    def procs(self) -> list[harness.Proc]:
        return [self.proc, *self.more]

    @property
    def pids(self) -> list[int]:
        return [p.proc.pid for p in self.procs]


STREAM = "tickers"  # set from --stream


def subscribe_msg(exchange: str, symbol: str) -> bytes:
    params: dict[str, Any] = {"stream": STREAM, "exchange": exchange}
    if STREAM == "tickers":
        params["symbols"] = [symbol]
    else:
        params["symbol"] = symbol
    return json.dumps({"action": "subscribe", "request_id": "1", "params": params}).encode()


LAYOUT = "symbols"  # set from --layout


def pairs_for(exchange: str, channels: int) -> list[tuple[str, str]]:
    """The (exchange, symbol) channels of a scenario: ``symbols`` = one exchange with
    ``channels`` symbols (realistic); ``exchanges`` = ``channels`` exchanges with one
    symbol each (isolates per-exchange routing cost in the gateway)."""
    if LAYOUT == "symbols" or channels == 1:
        return [(exchange, f"S{k:02d}/USDT") for k in range(channels)]
    return [(f"{exchange}{k:02d}", "S00/USDT") for k in range(channels)]


def login(url: str, email: str) -> str:
    req = urllib.request.Request(
        url + "/api/v1/auth/login", method="POST",
        data=json.dumps({"email": email, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return str(json.loads(resp.read())["access_token"])


def counters_of(v: Variant) -> dict[str, float]:
    """The gateway counters summed over the variant's processes (empty if any fails)."""
    each = [gateway_counters(p.url) for p in v.procs]
    if not all(each):
        return {}
    return {k: sum(c[k] for c in each) for k in each[0]}


def gateway_counters(url: str) -> dict[str, float]:
    """Sums of the gateway's stream counters from /metrics (empty when unavailable)."""
    want = {"gateway_ws_messages_delivered_total": "delivered",
            "gateway_ws_messages_conflated_total": "conflated",
            "gateway_ws_messages_dropped_total": "dropped"}
    out = dict.fromkeys(want.values(), 0.0)
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    for line in text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name in want:
            out[want[name]] += float(line.rsplit(" ", 1)[1])
    return out


def redis_pid(url: str) -> int | None:
    import redis

    try:
        return int(redis.Redis.from_url(url).info("server")["process_id"])
    except Exception:
        return None


# -- measuring ------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, clients: Clients, pub: Child,
                 variants: dict[str, Variant], redis_url: str) -> None:
        self.args = args
        self.clients = clients
        self.pub = pub
        self.variants = variants
        self.level = 0
        self.redis_pid = redis_pid(redis_url)
        self.ncpu = os.cpu_count() or 1

    def our_pids(self) -> list[int]:
        pids = [p for v in self.variants.values() for p in v.pids]
        pids += [*self.clients.pids, self.pub.proc.pid or 0]
        if self.redis_pid:
            pids.append(self.redis_pid)
        return list(dict.fromkeys(pids))

    def settle(self, limit: float = 15.0) -> None:
        """Until every server has been nearly idle (< 10% cpu) for 0.2 s: closing
        thousands of sockets keeps a server busy for a while after the clients left."""
        pids = list(dict.fromkeys(p for v in self.variants.values() for p in v.pids))
        deadline = time.monotonic() + limit
        last = sum(harness.cpu_seconds(p) for p in pids)
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = sum(harness.cpu_seconds(p) for p in pids)
            if now - last < 0.02:
                return
            last = now

    def wait_quiet(self, limit: float = 3.0) -> None:
        """Until no ticker frame arrives for 0.2 s (a backlog from the last step)."""
        deadline = time.monotonic() + limit
        last = self.clients.stats()["any"]
        while time.monotonic() < deadline:
            time.sleep(0.2)
            now = self.clients.stats()["any"]
            if now == last:
                return
            last = now

    def step(self, v: Variant, offered: float, n: int, channels: int,
             seconds: float | None = None) -> dict[str, Any]:
        """One load step against ``v``: ``offered`` deliveries/s for the window."""
        a = self.args
        seconds = seconds or a.seconds
        pairs = pairs_for(v.exchange, channels)
        subs = [len(range(k, n, channels)) for k in range(channels)]
        rate = offered * channels / n  # publishes/s
        self.wait_quiet()
        self.level += 1
        start = time.time() + 0.05
        measure_from = start + a.warmup
        end = measure_from + seconds
        self.clients.all({"op": "begin", "level": self.level, "measure_from": measure_from,
                          "deadline": end + a.grace})
        gw0 = counters_of(v) if v.name.startswith("a") else {}
        pids = self.our_pids()
        cpu0 = {p: harness.cpu_seconds(p) for p in pids}
        busy0, _ = harness.machine_busy_seconds()
        t0 = time.monotonic()
        res = self.pub.call({"op": "run", "prefix": v.prefix, "pairs": pairs,
                             "rate": rate, "start": start,
                             "warmup": a.warmup, "seconds": seconds, "level": self.level,
                             "stream": STREAM},
                            timeout=a.warmup + seconds + 30)
        wall = time.monotonic() - t0
        cpu1 = {p: harness.cpu_seconds(p) for p in pids}
        busy1, _ = harness.machine_busy_seconds()
        expected = sum(s * c for s, c in zip(res["sent"], subs, strict=True))
        # Let stragglers in (for the late count and the latency tail), bounded.
        drain_until = time.monotonic() + 1.0
        st = self.clients.stats()
        last, still = st["count"] + st["late"], time.monotonic()
        while time.monotonic() < drain_until and last < expected:
            time.sleep(0.05)
            st = self.clients.stats()
            got = st["count"] + st["late"]
            if got != last:
                last, still = got, time.monotonic()
            elif time.monotonic() - still > 0.3:
                break
        st = self.clients.stats(hist=True)
        gw1 = counters_of(v) if gw0 else {}
        used = {p: cpu1[p] - cpu0[p] for p in pids}
        ours = sum(used.values())
        machine = busy1 - busy0
        delivered = st["count"] / seconds
        rec = {
            "variant": v.name, "n": n, "channels": channels, "offered": offered,
            "publish_rate": rate, "expected": expected, "on_time": st["count"],
            "late": st["late"], "ok_frac": st["count"] / expected if expected else 0.0,
            "delivered_per_s": delivered, "reordered": st["reordered"],
            "p50": wsclient.percentile(st["hist"], 50),
            "p99": wsclient.percentile(st["hist"], 99),
            "max": wsclient.percentile(st["hist"], 100),
            # Every process of the variant (a2: both gateways); per process in the max.
            "server_cpu": sum(used[p] for p in v.pids) / wall,
            "server_cpu_max": max(used[p] for p in v.pids) / wall,
            "server_us_per_delivery": 1e6 * sum(used[p] for p in v.pids)
            / max(1.0, delivered * (wall - 0.05)),
            "clients_cpu": sum(used[p] for p in self.clients.pids) / wall,
            "publisher_cpu": used[self.pub.proc.pid or 0] / wall,
            "redis_cpu": used.get(self.redis_pid or -1, 0.0) / wall,
            "machine_busy": machine / wall, "others_cpu": max(0.0, machine - ours) / wall,
            "closed": st["closed"],
            "gateway_counters": {k: gw1[k] - gw0[k] for k in gw0} if gw1 else None,
        }
        rec["clean"] = rec["ok_frac"] >= 0.99
        v.steps.append(rec)
        if a.verbose:
            print("   " + step_line(rec), flush=True)
        return rec

    def attempt(self, v: Variant, offered: float, n: int, channels: int) -> dict[str, Any]:
        """One step; a near miss (90-99% on time) is run once more (not in --quick)."""
        rec = self.step(v, offered, n, channels)
        if not rec["clean"] and rec["ok_frac"] >= 0.9 and not self.args.quick:
            rec = self.step(v, offered, n, channels)
        return rec

    def ramp(self, group: list[Variant], n: int, channels: int) -> None:
        a = self.args
        for v in group:
            v.best = v.fail = None
            v.alive = True
            v.at_best = v.at_half = None
        for v in group:  # the start rate; below it, step down until clean (or a floor)
            offered = a.start
            while offered >= a.start / 16:
                rec = self.attempt(v, offered, n, channels)
                if rec["clean"]:
                    v.best, v.at_best = offered, rec
                    break
                v.fail = offered
                offered /= a.factor * a.factor
            v.alive = v.best == a.start
        offered = a.start * a.factor
        while any(v.alive for v in group) and offered <= a.max_rate:
            for v in group:
                if not v.alive:
                    continue
                rec = self.attempt(v, offered, n, channels)
                if rec["clean"]:
                    v.best, v.at_best = offered, rec
                else:
                    v.fail, v.alive = offered, False
            offered *= a.factor
        if a.bisect:
            for v in group:
                if v.best is not None and v.fail is not None:
                    mid = math.sqrt(v.best * v.fail)
                    rec = self.attempt(v, mid, n, channels)
                    if rec["clean"]:
                        v.best, v.at_best = mid, rec
        for v in group:
            if v.best is not None:
                v.at_half = self.step(v, v.best / 2, n, channels)

    def scenario(self, n: int, channels: int) -> dict[str, Any]:
        a = self.args
        print(f"\n== N = {n} sockets, {channels} channel(s): "
              f"{n // channels if n >= channels else n} sockets per channel ==", flush=True)
        group = [self.variants[name] for name in a.variants]
        for v in group:
            pairs = pairs_for(v.exchange, channels)
            specs = [(v.path, subscribe_msg(*pairs[i % channels])) for i in range(n)]
            times, errors, took = [], [], 0.0
            for j, proc in enumerate(v.procs):  # a2: socket i on process i mod 2
                t, e, k = self.clients.connect(f"s-{v.name}-{j}", proc.url,
                                               specs[j::len(v.procs)], 64, a.connect_timeout)
                times, errors, took = times + t, errors + e, took + k
            if errors:
                print(f"   {v.label}: {len(errors)} of {n} sockets failed, e.g. {errors[0]}")
            if a.verbose:
                print(f"   {v.label}: {len(times)} sockets ready in {took:.1f} s")
        self.settle()
        try:
            self.ramp(group, n, channels)
            if a.py_spy and (n, channels) == tuple(a.py_spy_scenario):
                # The gateway at its clean rate, and (c) at that same rate to compare.
                gw = self.variants["a"].best if "a" in a.variants else None
                for v in group:
                    rate = v.best if v.name in ("a", "a_batch") else gw
                    if v.name in ("a", "a_batch", "c") and rate:
                        profile(self, v, rate, n, channels)
        finally:
            for v in group:
                for j in range(len(v.procs)):
                    self.clients.close(f"s-{v.name}-{j}")
            self.settle()
        return summarize(group, n, channels)


def step_line(r: dict[str, Any]) -> str:
    return (f"{LABELS[r['variant']]:<26} offered {r['offered'] / 1000:7.1f}k/s "
            f"({r['publish_rate']:8.1f} pub/s)  on time {100 * r['ok_frac']:6.2f}% "
            f"late {r['late']:>6}  p50 {r['p50']:7.2f} p99 {r['p99']:7.2f} ms  "
            f"server {100 * r['server_cpu']:3.0f}% cpu "
            + (f"(busiest {100 * r['server_cpu_max']:3.0f}%) " if r['variant'] == "a2" else "")
            + f"{r['server_us_per_delivery']:5.1f} "
            f"us/deliv  clients {100 * r['clients_cpu']:3.0f}%  pub "
            f"{100 * r['publisher_cpu']:3.0f}%  redis {100 * r['redis_cpu']:3.0f}%  "
            f"others {100 * r['others_cpu']:3.0f}%"
            + (f"  [gateway: conflated {c['conflated']:.0f} dropped {c['dropped']:.0f}]"
               if (c := r.get("gateway_counters")) else ""))


def summarize(group: list[Variant], n: int, channels: int) -> dict[str, Any]:
    print(f"\n   N = {n}, {channels} channel(s): clean = highest offered deliveries/s with "
          f">= 99% on time")
    print(f"   {'server':<26} {'clean deliv/s':>13}   {'@clean p50/p99 ms':>18}   "
          f"{'@half p50/p99 ms':>17}   {'server us/deliv':>15}")
    out: dict[str, Any] = {"n": n, "channels": channels, "variants": {}}
    for v in group:
        best = v.at_best
        half = v.at_half
        clean = f"{best['delivered_per_s']:>13.0f}" if best else f"{'< start':>13}"
        at_clean = f"{best['p50']:8.2f}/{best['p99']:<8.2f}" if best else f"{'-':>17}"
        at_half = f"{half['p50']:8.2f}/{half['p99']:<8.2f}" if half else f"{'-':>17}"
        cost = f"{best['server_us_per_delivery']:>15.1f}" if best else f"{'-':>15}"
        print(f"   {v.label:<26} {clean}   {at_clean:>18}   {at_half:>17}   {cost}")
        out["variants"][v.name] = {"clean": best["delivered_per_s"] if best else None,
                                   "at_clean": best, "at_half": half,
                                   "steps": list(v.steps)}
    rates = {v.name: (v.at_best or {}).get("delivered_per_s") for v in group}
    common = min((r for r in rates.values() if r), default=None)
    if common:
        print(f"   all servers clean up to {common:.0f} deliveries/s")
    ratios = {}
    for num, den in (("a", "c"), ("a", "b"), ("a_batch", "c"), ("a_batch", "b"),
                     ("a_old", "c"), ("a_old", "b"), ("a", "a_old")):
        if rates.get(num) and rates.get(den):
            ratios[f"{num}/{den}"] = rates[num] / rates[den]  # type: ignore[operator]
    if ratios:
        print("   ratios of clean rates: " + "  ".join(f"{k} = {r:.2f}"
                                                      for k, r in ratios.items()))
    out["ratios"] = ratios
    out["common_clean"] = common
    for v in group:
        v.steps.clear()
    return out


# -- connect time and memory ----------------------------------------------------------------
def connect_phase(bench: Bench, v: Variant, count: int,
                  concurrency: int) -> dict[str, Any] | None:
    pairs = pairs_for(v.exchange, 50)
    specs = [(v.path, subscribe_msg(*pairs[i % 50])) for i in range(count)]
    times, errors, took = bench.clients.connect("connect", v.proc.url, specs, concurrency,
                                                bench.args.connect_timeout)
    bench.clients.close("connect")
    bench.settle()
    times.sort()
    if not times:
        print(f"   {v.label:<26} no socket connected ({errors[0] if errors else '?'})")
        return None

    def pct(p: float) -> float:
        return times[min(len(times) - 1, int(p / 100 * len(times)))] if times else float("nan")

    rec = {"variant": v.name, "sockets": count, "concurrency": concurrency, "ok": len(times),
           "errors": len(errors), "p50": pct(50), "p99": pct(99), "max": pct(100),
           "per_s": len(times) / took}
    print(f"   {v.label:<26} {count} sockets, {concurrency} in flight: p50 {rec['p50']:.1f} ms"
          f"  p99 {rec['p99']:.1f} ms  max {rec['max']:.1f} ms  ({rec['per_s']:.0f} sockets/s,"
          f" {len(errors)} failed{': ' + errors[0] if errors else ''})", flush=True)
    return rec


def memory_phase(bench: Bench, v: Variant, count: int) -> dict[str, Any] | None:
    """RSS per idle socket: authenticated, one ticker subscription, no traffic."""
    pairs = pairs_for(v.exchange, 50)
    warm = [(v.path, subscribe_msg(*pairs[i % 50])) for i in range(200)]
    bench.clients.connect("warm", v.proc.url, warm, 32, bench.args.connect_timeout)
    bench.clients.close("warm")
    bench.settle()
    time.sleep(0.5)
    before = harness.rss_kib(v.pid)
    specs = [(v.path, subscribe_msg(*pairs[i % 50])) for i in range(count)]
    times, errors, _took = bench.clients.connect("idle", v.proc.url, specs, 64,
                                                max(bench.args.connect_timeout, 120))
    bench.settle()
    time.sleep(0.5)
    after = harness.rss_kib(v.pid)
    bench.clients.close("idle")
    bench.settle()
    if not times:
        print(f"   {v.label:<26} no socket connected ({errors[0] if errors else '?'})")
        return None
    per = (after - before) * 1.024 / max(1, len(times))  # KiB -> kB
    rec = {"variant": v.name, "sockets": len(times), "errors": len(errors),
           "rss_before_kib": before, "rss_after_kib": after, "kb_per_socket": per}
    print(f"   {v.label:<26} VmRSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB with "
          f"{len(times)} idle sockets: {per:.1f} kB per socket"
          f"{f' ({len(errors)} failed: {errors[0]})' if errors else ''}", flush=True)
    return rec


# -- profiling ------------------------------------------------------------------------------
def profile(bench: Bench, v: Variant, offered: float, n: int, channels: int) -> None:
    """py-spy the server at ``offered`` for --py-spy seconds; print where time goes."""
    if not shutil.which("py-spy"):
        print("   (py-spy not installed: no profile)")
        return
    seconds = bench.args.py_spy
    out = Path(tempfile.gettempdir()) / f"fanout-{v.name}-{n}x{channels}.txt"
    out.unlink(missing_ok=True)
    spy = subprocess.Popen(["py-spy", "record", "--format", "raw", "-r", "250", "-d",
                            str(int(seconds + bench.args.warmup + 1)), "-p", str(v.pid),
                            "-o", str(out),
                            # --native pauses the process per sample (slower, exact C frames)
                            *(["--native"] if bench.args.py_spy_native else ["--nonblocking"])],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    rec = bench.step(v, offered, n, channels, seconds=seconds)
    try:
        _, err = spy.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        spy.kill()
        err = "py-spy timed out"
    print(f"\n   profile of {v.label} at {rec['delivered_per_s']:.0f} deliveries/s "
          f"(server {100 * rec['server_cpu']:.0f}% cpu); collapsed stacks in {out}")
    if out.exists():
        for line in summarize_profile(out.read_text()):
            print("     " + line)
    else:
        print(f"     py-spy wrote nothing: {(err or '').strip()[-300:]}")


def summarize_profile(text: str, top: int = 14) -> list[str]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        if "PyThread_acquire_lock" in stack:
            continue  # an idle executor thread waiting for work (--native shows these)
        count = int(count_s)
        total += count
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].rsplit(":", 1)[0].split("/")[-1]
                  + ")" if " (" in f else f for f in stack.split(";")]
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    if not total:
        return ["(no samples)"]
    lines = [f"{total} samples; self time:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    lines.append("inclusive (stream code and aiohttp/redis entry points):")
    keep = [(f, c) for f, c in incl.most_common(200)
            if any(k in f for k in ("fanout", "connection", "hub", "frames", "web_ws",
                                    "writer", "client", "streams", "service", "_read",
                                    "gc_collect"))]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in keep[:top]]
    return lines


# -- main -----------------------------------------------------------------------------------
def client_loop(want_uvloop: bool) -> str:
    if want_uvloop:
        try:
            import uvloop

            return f"uvloop {uvloop.__version__}"
        except ImportError:
            pass
    return "asyncio"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def git_head(path: str) -> str:
    try:
        head = subprocess.run(["git", "-C", path, "log", "-1", "--format=%h %s"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return head + (" + uncommitted changes" if dirty else "")


def check_targets(results: dict[str, Any]) -> None:
    print("\n== targets (issue 3) ==")

    def line(name: str, value: float | None, target: float, higher: bool, unit: str = "") -> None:
        if value is None:
            print(f"   {name:<46} not measured")
            return
        ok = value >= target if higher else value <= target
        print(f"   {name:<46} {value:8.2f}{unit}  target {'>=' if higher else '<='} "
              f"{target}{unit}  {'met' if ok else 'MISSED'}")

    for sc in results["scenarios"]:
        n, ch = sc["n"], sc["channels"]
        r = sc["ratios"]
        if n >= 1000:
            line(f"a/c at N={n}, {ch} ch", r.get("a/c"), TARGETS["a/c"], True)
            line(f"a/b at N={n}, {ch} ch", r.get("a/b"), TARGETS["a/b"], True)
        line(f"a_batch/c at N={n}, {ch} ch", r.get("a_batch/c"), TARGETS["a_batch/c"], True)
        half = (sc["variants"].get("a") or {}).get("at_half")
        limit = TARGETS["p99_half_100"] if n <= 100 else TARGETS["p99_half_1000"]
        line(f"gateway p99 at half clean rate, N={n}, {ch} ch", half["p99"] if half else None,
             limit, False, " ms")
    for key, conn in results.get("connect", {}).items():
        if key.startswith("a@"):
            line(f"gateway connect+auth+snapshot p99, {key[2:]} in flight",
                 conn["p99"] if conn else None, TARGETS["connect_p99"], False, " ms")
    mem = results.get("memory", {}).get("a")
    line("gateway RSS per idle socket", mem["kb_per_socket"] if mem else None,
         TARGETS["kb_per_socket"], False, " kB")


def old_variant(gateway: harness.Proc, email: str) -> Variant:
    """(a_old): its own user and token (its own database), its own exchange name."""
    harness.cli(gateway, "create-user", "--email", email, "--password", PASSWORD)
    token = login(gateway.url, email)
    return Variant("a_old", gateway, gateway.env["FULLON_REDIS_PREFIX"], "bench_ao",
                   f"/api/v1/cache/ws?token={token}")


# Every bench client connects from 127.0.0.1: no per-address connection cap.
GATEWAY_ENV = {"FULLON_ACCESS_TTL": "3600", "FULLON_MAX_CONNECTIONS_PER_ADDRESS": "0"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="< 2 minutes: N=1000 only, short steps")
    p.add_argument("--gateway-path", help="run the gateway from this tree (another worktree)")
    p.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                   help="extra FULLON_* setting for (a) and (a)+batch, e.g. FULLON_UVLOOP=false")
    p.add_argument("--old-gateway-path",
                   help="also run this tree's gateway as (a_old), beside (a) in the same run")
    p.add_argument("--publisher", choices=["contract", "gateway"], default="contract",
                   help="contract: HSET+PUBLISH like fullon_cache set_ticker (default); "
                        "gateway: fullon_gateway.publish.Publisher.ticker")
    p.add_argument("--stream", choices=["tickers", "trades"], default="tickers",
                   help="trades (never conflated) needs --publisher gateway")
    p.add_argument("--layout", choices=["symbols", "exchanges"], default="symbols",
                   help="what the channels of a scenario are: symbols of one exchange "
                        "(default) or one symbol on each of that many exchanges")
    p.add_argument("--scenarios", default="100x1,100x50,1000x1,1000x50",
                   help="NxCHANNELS list")
    p.add_argument("--variants", default=None,
                   help="default a,a_batch,b,c (and a_old with --old-gateway-path)")
    p.add_argument("--clients", type=int, default=2, help="client processes")
    p.add_argument("--no-uvloop", dest="uvloop", action="store_false",
                   help="clients on the stock asyncio loop even when uvloop is installed")
    p.add_argument("--seconds", type=float, default=2.0, help="measured window per step")
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--grace", type=float, default=0.05,
                   help="a delivery counts as on time until window end + grace")
    p.add_argument("--start", type=float, default=10_000, help="first offered deliveries/s")
    p.add_argument("--factor", type=float, default=1.5)
    p.add_argument("--max-rate", type=float, default=700_000)
    p.add_argument("--no-bisect", dest="bisect", action="store_false")
    p.add_argument("--connect-sockets", type=int, default=1000)
    p.add_argument("--connect-concurrency", default="1,10",
                   help="sockets in flight while connecting, one pass per value")
    p.add_argument("--idle-sockets", type=int, default=5000)
    p.add_argument("--connect-timeout", type=float, default=60)
    p.add_argument("--py-spy", type=float, default=0.0, metavar="SECONDS",
                   help="profile the gateway at its clean rate in --py-spy-scenario, and "
                        "(c) at the gateway's rate")
    p.add_argument("--py-spy-scenario", default="1000x1")
    p.add_argument("--py-spy-native", action="store_true",
                   help="include C frames (the garbage collector, syscalls) in the profile")
    p.add_argument("--json", help="write every figure here")
    p.add_argument("-q", dest="verbose", action="store_false", help="no per-step lines")
    args = p.parse_args()
    if args.stream == "trades" and args.publisher != "gateway":
        p.error("--stream trades needs --publisher gateway (set_ticker only publishes tickers)")
    if args.quick:  # shorter everything, unless given explicitly
        given = {a.split("=")[0] for a in sys.argv[1:] if a.startswith("--")}
        quick = {"scenarios": "1000x1,1000x50", "seconds": 1.0, "warmup": 0.3, "factor": 1.7,
                 "start": 15_000.0, "idle_sockets": 2000}
        for name, value in quick.items():
            if "--" + name.replace("_", "-") not in given:
                setattr(args, name, value)
        if "--no-bisect" not in given:
            args.bisect = False
    args.scenarios = [tuple(int(x) for x in s.split("x")) for s in args.scenarios.split(",")]
    if args.variants is None:
        args.variants = "a,a_old,a_batch,b,c" if args.old_gateway_path else "a,a_batch,b,c"
    args.variants = [v for v in args.variants.split(",") if v]
    args.py_spy_scenario = [int(x) for x in args.py_spy_scenario.split("x")]
    args.connect_concurrency = [int(x) for x in str(args.connect_concurrency).split(",")]
    return args


def main() -> int:
    global STREAM, LAYOUT
    args = parse_args()
    STREAM, LAYOUT = args.stream, args.layout
    began = time.monotonic()
    fd_limit = wsclient.raise_fd_limit()  # inherited by the servers started below
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    gw_tree = str(Path(args.gateway_path).resolve()) if args.gateway_path else str(harness.ROOT)
    print("fan-out benchmark (issue 3)")
    print(f"   machine: {os.cpu_count()} cores TOTAL, shared by the servers, {args.clients} "
          f"client process(es), the publisher and Redis (and anyone else's jobs); "
          f"loadavg {loadavg()}")
    print(f"   python {platform.python_version()}, aiohttp {aiohttp.__version__}; gateway tree "
          f"{gw_tree} ({git_head(gw_tree)})")
    print(f"   publisher: {args.publisher}, stream {args.stream}, channels = {args.layout}; "
          f"client loop: "
          f"{client_loop(args.uvloop)}; fd limit {fd_limit}")
    print(f"   steps: warm-up {args.warmup} s + {args.seconds} s measured, on time = by window "
          f"end + {args.grace * 1000:.0f} ms, rates x{args.factor} from {args.start:.0f}/s")

    tag = "fanout" + uuid.uuid4().hex[:6]
    gw_env = {**GATEWAY_ENV, **dict(e.split("=", 1) for e in args.gateway_env)}
    if args.gateway_env:
        print(f"   (a) settings: {', '.join(args.gateway_env)}")
    gateway = harness.start_gateway(tag, gw_env, gateway_path=args.gateway_path)
    # ?batch=1 gets its own gateway process (same database, prefix and secret, so the
    # same JWT works): each process then holds N sockets, as a deployment would, and
    # one variant's heap (and garbage-collector pauses) never weighs on the other's.
    gateway_b = harness.start_gateway(tag, gw_env, gateway_path=args.gateway_path)
    gateway_old = (harness.start_gateway(tag + "o", GATEWAY_ENV,
                                         gateway_path=args.old_gateway_path)
                   if args.old_gateway_path else None)
    if gateway_old is not None:
        old_tree = str(Path(args.old_gateway_path).resolve())
        print(f"   old tree (a_old): {old_tree} ({git_head(old_tree)})")
    source = [] if args.publisher == "contract" else ["gateway"]
    base_b = harness.start_script("baseline_per_socket.py", redis_url, f"{tag}b:", *source)
    base_c = harness.start_script("baseline_raw_fanout.py", redis_url, f"{tag}c:", *source)
    clients = Clients(args.clients, args.uvloop)
    pub = Child(publisher_mod.worker, args.publisher, redis_url,
                args.gateway_path or str(harness.ROOT))
    results: dict[str, Any] = {"args": {k: v for k, v in vars(args).items()},
                               "scenarios": [], "connect": {}, "memory": {}}
    try:
        email = f"fanout-{uuid.uuid4().hex[:8]}@example.com"
        print("   " + harness.cli(gateway, "create-user", "--email", email, "--password",
                                  PASSWORD).strip())
        token = login(gateway.url, email)
        gp = gateway.env["FULLON_REDIS_PREFIX"]
        path = f"/api/v1/cache/ws?token={token}"
        variants = {
            "a": Variant("a", gateway, gp, "bench_a", path),
            **({"a_old": old_variant(gateway_old, email)} if gateway_old is not None else {}),
            "a_batch": Variant("a_batch", gateway_b, gp, "bench_ab", path + "&batch=1"),
            # Two processes (the a and a_batch gateways: same database, prefix and secret)
            # holding half the sockets each, as behind a load balancer; its own exchange.
            "a2": Variant("a2", gateway, gp, "bench_a2", path, more=[gateway_b]),
            "b": Variant("b", base_b, f"{tag}b:", "bench_b", "/api/v1/cache/ws"),
            "c": Variant("c", base_c, f"{tag}c:", "bench_c", "/api/v1/cache/ws"),
        }
        bench = Bench(args, clients, pub, variants, redis_url)
        _, errors, _ = clients.connect("probe", gateway.url, [
            (path, subscribe_msg("bench_a", "S00/USDT"))], 1, 15)
        clients.close("probe")
        if errors:
            print(f"   the gateway in {gw_tree} cannot stream tickers ({errors[0]}): "
                  "(a) skipped; --gateway-path points at a tree that can")
            args.variants = [v for v in args.variants if not v.startswith("a")]

        if args.idle_sockets:
            print(f"\n== RSS per idle socket ({args.idle_sockets} sockets, each authenticated "
                  "and subscribed to one ticker, no traffic) ==")
            for name in [n for n in ("a", "c") if n in args.variants][:1 if args.quick else 2]:
                results["memory"][name] = memory_phase(bench, variants[name], args.idle_sockets)
        if args.connect_sockets:
            print(f"\n== connect + auth + subscribe + first snapshot, {args.connect_sockets} "
                  "sockets ==")
            for name in [n for n in ("a", "b", "c") if n in args.variants][:1 if args.quick else 3]:
                for conc in args.connect_concurrency:
                    results["connect"][f"{name}@{conc}"] = connect_phase(
                        bench, variants[name], args.connect_sockets, conc)
        for n, channels in args.scenarios:
            results["scenarios"].append(bench.scenario(n, channels))
        check_targets(results)
    finally:
        clients.stop()
        pub.stop()
        for proc in (gateway, gateway_b, base_b, base_c, gateway_old):
            if proc is not None:
                proc.stop()
    took = time.monotonic() - began
    print(f"\n   run took {took:.0f} s; loadavg at the end "
          f"{loadavg()}")
    results["seconds"] = took
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
