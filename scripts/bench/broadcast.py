"""10,000 sockets: a subscribe storm, then one ticker broadcast to all of them (issue 11).

    python scripts/bench/broadcast.py [--old-gateway-path TREE] [fanout.py options]

fanout.py's harness with this scenario: one channel (one symbol) and 10,000
subscribers (``--scenarios 10000x1``), the connect phase as the storm (10,000 sockets,
1,000 connecting at once: each socket's connect + upgrade + auth + subscribe +
snapshot, and how many failed), and (c), the one-send-per-message raw fan-out, as the
baseline in the same turns. The broadcast latency is publish -> receive at the
clean rate and at half of it (p50/p99 per step). The descriptor limit is raised here
and in every client process (each socket is one descriptor on each side).

``--variants a,a2,c`` adds the same 10,000 sockets split over two gateway processes
(same database, Redis prefix and secret, as behind a load balancer): a figure in
addition to one process, never instead of it.

The floor, in the same run, before and after the servers (``--no-floor`` skips it):
broadcast_floor.py's plain sockets - forked senders ``socket.send`` a 300-byte message
to the same number of loopback sockets, read by as many epoll readers as there are
bench clients, at the first step's rate - with one sender (beside one gateway process)
and two (beside ``a2``). The ratio gateway p99 / floor p99 at that rate says how much
of the broadcast's tail is the gateway's and how much the machine's: no server can
deliver to 10,000 loopback sockets on these cores faster than plain sends do.
``sendcost.py`` gives the kernel's share per send.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import broadcast_floor
import fanout

DEFAULTS = {
    "--scenarios": "10000x1",
    "--variants": "a,c",
    "--connect-sockets": "10000",
    "--connect-concurrency": "1000",
    "--idle-sockets": "10000",
    "--clients": "4",
    "--start": "20000",
    "--seconds": "2",
}


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def option(argv: list[str], name: str) -> str:
    i = max(i for i, a in enumerate(argv) if a == name)  # the last one given wins
    return argv[i + 1]


def floors(sockets: int, receivers: int, rate: float, when: str) -> dict[int, Any]:
    out = {}
    for senders in (1, 2):
        f = broadcast_floor.measure(sockets, senders, receivers, broadcasts=10, rate=rate)
        print(f"   floor {when}, {senders} sender(s): {f.line()}", flush=True)
        out[senders] = f
    return out


def first_step_p99(results: dict[str, Any], variant: str, offered: float) -> float | None:
    """The variant's p99 at the first step's rate in the first scenario (the one the
    floor was measured for; a near miss repeated: the last), None if not clean."""
    if not results["scenarios"]:
        return None
    steps = results["scenarios"][0]["variants"].get(variant, {}).get("steps", [])
    at = [s for s in steps if s["offered"] == offered and s["ok_frac"] >= 0.99]
    return float(at[-1]["p99"]) if at else None


def compare(results: dict[str, Any], before: dict[int, Any], after: dict[int, Any],
            offered: float, rate: float) -> None:
    print(f"\n== the broadcast beside its floor, {rate:g} broadcasts/s (p99 in ms; target "
          f"<= 100) ==")
    for variant, senders in (("a", 1), ("a2", 2), ("a_old", 1)):
        p99 = first_step_p99(results, variant, offered)
        if p99 is None:
            continue
        floor = sorted((before[senders].p99, after[senders].p99))
        print(f"   {fanout.LABELS[variant]:<26} p99 {p99:7.1f}   floor ({senders} sender(s)) "
              f"{floor[0]:.1f}-{floor[1]:.1f}   gateway/floor {p99 / floor[1]:.2f}-"
              f"{p99 / floor[0]:.2f}   target {'met' if p99 <= 100 else 'MISSED'}")
    worst = max(f.p99 for f in (*before.values(), *after.values()))
    best = min(f.p99 for f in (*before.values(), *after.values()))
    print(f"   the floor itself: p99 {best:.1f}-{worst:.1f} ms "
          f"({'within' if worst <= 100 else 'not within'} the target in every run)")


def main() -> int:
    limit = raise_fd_limit()
    print(f"descriptor limit: {limit}", flush=True)
    # "--opt=value" as two tokens, so options are found whichever form was typed.
    argv = [part for a in sys.argv[1:]
            for part in (a.split("=", 1) if a.startswith("--") and "=" in a else [a])]
    with_floor = "--no-floor" not in argv
    argv = [a for a in argv if a != "--no-floor"]
    given = set(argv)
    defaults = dict(DEFAULTS)
    if "--old-gateway-path" in given:  # the tree before the fixes, in the same turns
        defaults["--variants"] = "a,a_old,c"
    extra = [x for k, v in defaults.items() if k not in given for x in (k, v)]
    argv = [*extra, *argv]
    sockets = int(option(argv, "--scenarios").split(",")[0].split("x")[0])
    receivers, offered = int(option(argv, "--clients")), float(option(argv, "--start"))
    rate = offered / sockets  # broadcasts/s at the first step
    own_json = "--json" not in given
    if own_json:
        fd, json_path = tempfile.mkstemp(prefix="broadcast-", suffix=".json")
        os.close(fd)  # fanout writes it by name; no descriptor for the forks to inherit
        argv += ["--json", json_path]
    else:
        json_path = option(argv, "--json")
    try:
        before = floors(sockets, receivers, rate, "before") if with_floor else {}
        sys.argv = [sys.argv[0], *argv]
        rc = fanout.main()
        if with_floor:
            after = floors(sockets, receivers, rate, "after")
            compare(json.loads(Path(json_path).read_text()), before, after, offered, rate)
    finally:
        if own_json:
            Path(json_path).unlink(missing_ok=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
