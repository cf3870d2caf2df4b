"""How many connections one address can hold, at the default settings (issue 11).

    python scripts/bench/address_cap.py [--connections 400] [--gateway-path TREE]

Starts the real gateway (``python -m fullon_gateway``, default settings, so
``max_connections_per_address`` = 256), opens ``--connections`` keep-alive connections
from 127.0.0.2, each sending one ``GET /health/live``, and keeps every one open. Prints
how many were served and held, how many got the JSON 503 ``too_many_connections`` (and
how fast), whether any hung, and whether another address (127.0.0.1) is still served
while they are held. Exits 1 when an answer is not one of those two, or 127.0.0.1 is
refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import wsclient

ATTACKER = "127.0.0.2"  # any 127/8 address is this machine; the gateway sees it as another
REQUEST = b"GET /health/live HTTP/1.1\r\nHost: bench\r\n\r\n"


async def one(port: int, source: str) -> tuple[str, float, asyncio.StreamWriter | None]:
    """('held' | 'refused' | other, seconds to the answer, the open writer if held)."""
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(REQUEST)
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
        writer.close()
        return f"no answer ({type(exc).__name__})", time.monotonic() - t0, None
    took = time.monotonic() - t0
    status = head.split(b" ", 2)[1]
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    body = await reader.readexactly(length)
    if status == b"200":
        return "held", took, writer  # keep-alive: the connection stays open
    writer.close()
    if status == b"503" and json.loads(body).get("code") == "too_many_connections":
        return "refused", took, None
    return f"HTTP {status.decode()} {body[:80]!r}", took, None


async def run(port: int, connections: int) -> int:
    results = await asyncio.gather(*(one(port, ATTACKER) for _ in range(connections)))
    held = [r for r in results if r[0] == "held"]
    refused = [r for r in results if r[0] == "refused"]
    other = [r for r in results if r[0] not in ("held", "refused")]
    other_address, _, writer = await one(port, "127.0.0.1")
    for _, _, w in held:
        assert w is not None
        w.close()
    if writer is not None:
        writer.close()
    slowest = max((r[1] for r in refused), default=0.0)
    print(f"{connections} connections from {ATTACKER}: {len(held)} served and held open, "
          f"{len(refused)} refused with the JSON 503 too_many_connections (slowest answer "
          f"{slowest * 1000:.0f} ms), {len(other)} otherwise{': ' + other[0][0] if other else ''}")
    served = "served (200)" if other_address == "held" else other_address
    print(f"while they were held, 127.0.0.1: {served}")
    return 0 if not other and other_address == "held" else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=400)
    ap.add_argument("--gateway-path")
    a = ap.parse_args()
    wsclient.raise_fd_limit()
    gateway = harness.start_gateway("cap", gateway_path=a.gateway_path)
    try:
        port = urlparse(gateway.url).port
        assert port is not None
        return asyncio.run(run(port, a.connections))
    finally:
        gateway.stop()


if __name__ == "__main__":
    sys.exit(main())
