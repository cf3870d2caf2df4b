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
addition to one process, never instead of it. ``sendcost.py`` measures the kernel's
floor under it (CPU per small loopback send).
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

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


if __name__ == "__main__":
    limit = raise_fd_limit()
    print(f"descriptor limit: {limit}", flush=True)
    given = {a.split("=")[0] for a in sys.argv[1:]}
    defaults = dict(DEFAULTS)
    if "--old-gateway-path" in given:  # the tree before the fixes, in the same turns
        defaults["--variants"] = "a,a_old,c"
    extra = [x for k, v in defaults.items() if k not in given for x in (k, v)]
    sys.argv = [sys.argv[0], *extra, *sys.argv[1:]]
    sys.exit(fanout.main())
