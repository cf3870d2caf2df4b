"""The kernel's floor under a fan-out: CPU per send of one small frame to many sockets.

    python scripts/bench/sendcost.py [--sockets 10000] [--size 300] [--rounds 5]

Opens N loopback TCP connections (TCP_NODELAY, as aiohttp sets it) to a reader process
that drains them with epoll, as the bench clients do, then sends one ``--size`` byte
message to every socket per round, from plain Python (``socket.send``: no event loop,
no framing), and prints the sender's CPU per send. For comparison, the same over Unix
socket pairs (no TCP stack) and a write to /dev/null (the bare syscall).

Why: a broadcast of one ticker to N sockets costs at least N such sends in the one
process that holds the sockets; on loopback the receiver's TCP processing runs in the
sender's send() as well. The gateway's and the baselines' per-delivery CPU in
fanout.py / broadcast.py can be read against this floor.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from broadcast_floor import polled_connections
from wsclient import raise_fd_limit


def _reader(port: int, n: int, ready_w: int, seconds: float) -> None:
    ep, by_fd = polled_connections([port], n)
    os.write(ready_w, b"1")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for fd, _ in ep.poll(0.5):
            with contextlib.suppress(BlockingIOError):
                by_fd[fd].recv(65536)
    os._exit(0)


def tcp_cost(n: int, size: int, rounds: int) -> list[float]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    port = srv.getsockname()[1]
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        srv.close()
        _reader(port, n, ready_w, 5.0 + rounds)
    accepted = [srv.accept()[0] for _ in range(n)]
    os.read(ready_r, 1)
    for a in accepted:
        a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"x" * size
    out = []
    for _ in range(rounds):
        time.sleep(0.3)
        c0 = time.process_time()
        for a in accepted:
            a.send(msg)
        out.append((time.process_time() - c0) / n * 1e6)
    os.waitpid(pid, 0)
    for a in accepted:
        a.close()
    srv.close()
    return out


def unix_cost(n: int, size: int, rounds: int) -> list[float]:
    pairs = [socket.socketpair() for _ in range(min(n, 2000))]
    msg = b"x" * size
    out = []
    for _ in range(rounds):
        c0 = time.process_time()
        for a, _b in pairs:
            a.send(msg)
        out.append((time.process_time() - c0) / len(pairs) * 1e6)
        for _a, b in pairs:
            b.recv(65536)
    for a, b in pairs:
        a.close()
        b.close()
    return out


def null_cost(size: int) -> float:
    fd = os.open(os.devnull, os.O_WRONLY)
    msg = b"x" * size
    c0 = time.process_time()
    for _ in range(100_000):
        os.write(fd, msg)
    os.close(fd)
    return (time.process_time() - c0) / 100_000 * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sockets", type=int, default=10_000)
    p.add_argument("--size", type=int, default=300)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    raise_fd_limit()
    print(f"loadavg {os.getloadavg()}; {os.cpu_count()} cores")
    tcp = tcp_cost(a.sockets, a.size, a.rounds)
    unix = unix_cost(a.sockets, a.size, a.rounds)
    med = statistics.median(tcp)
    print(f"TCP loopback send, {a.size} B to each of {a.sockets} sockets: "
          f"{', '.join(f'{x:.1f}' for x in tcp)} us CPU per send (median {med:.1f}); "
          f"one broadcast >= {med * a.sockets / 1000:.0f} ms of sender CPU")
    print(f"Unix socketpair send: median {statistics.median(unix):.1f} us; "
          f"/dev/null write: {null_cost(a.size):.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
