"""The floor under a 10,000-socket broadcast on this machine: plain sockets, no framing.

    python scripts/bench/broadcast_floor.py [--sockets 10000] [--senders 1] [--receivers 4]
                                            [--broadcasts 10] [--rate 2]

``--senders`` forked processes each hold their share of N loopback TCP connections
(TCP_NODELAY, as aiohttp sets it) and, per broadcast, ``socket.send`` one 300-byte
message carrying the publish time to each of them; ``--receivers`` forked processes
read them with epoll, as the bench clients do, and timestamp each arrival. Prints
publish -> receive p50/p99 over every delivery and the CPU per send and per receive.

Why: broadcast.py's target (p99 <= 100 ms at 10,000 subscribers) is bounded by what
the kernel and the clients cost on the same two cores, whatever the server's Python
does. This is that bound for one sending process and for two (the gateway's own
figures in broadcast.py: one process, and ``--variants a,a2`` for two).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import select
import signal
import socket
import struct
import time
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

_SIZE = 300
_STOP = bytes(8)


def _now() -> float:
    # CLOCK_MONOTONIC is one clock for every process of the machine.
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def _sender(listener: socket.socket, count: int, control: int, report: int) -> None:
    conns = []
    for _ in range(count):
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setblocking(False)
        conns.append(conn)
    os.write(report, b"s")
    cpu = 0.0
    while True:
        stamp = os.read(control, 8)
        if len(stamp) < 8 or stamp == _STOP:
            break
        c0 = time.process_time()
        msg = stamp + b"x" * (_SIZE - 8)
        for conn in conns:
            conn.send(msg)
        cpu += time.process_time() - c0
    os.write(report, struct.pack("d", cpu))
    os._exit(0)


def polled_connections(ports: list[int], per_port: int
                       ) -> tuple[select.epoll, dict[int, socket.socket]]:
    """``per_port`` non-blocking loopback connections to each port, registered for
    reading: the poller and the sockets by descriptor (sendcost.py's reader too)."""
    poller = select.epoll()
    by_fd = {}
    for port in ports:
        for _ in range(per_port):
            conn = socket.create_connection(("127.0.0.1", port))
            conn.setblocking(False)
            poller.register(conn.fileno(), select.EPOLLIN)
            by_fd[conn.fileno()] = conn
    return poller, by_fd


def _receiver(ports: list[int], per_port: int, broadcasts: int, out: int, report: int) -> None:
    poller, by_fd = polled_connections(ports, per_port)
    os.write(report, b"r")
    latencies: list[float] = []
    need = broadcasts * len(by_fd)
    c0 = time.process_time()
    while len(latencies) < need:
        for fd, _ in poller.poll(1.0):
            data = by_fd[fd].recv(65536)
            now = _now()
            for off in range(0, len(data) - 7, _SIZE):
                latencies.append(now - struct.unpack_from("d", data, off)[0])
    cpu = time.process_time() - c0
    body = struct.pack(f"d{len(latencies)}d", cpu, *latencies)
    with os.fdopen(out, "wb") as f:
        f.write(struct.pack("q", len(body)) + body)
    os._exit(0)


def _child(body: Callable[..., None], *args: Any) -> NoReturn:
    """Run a forked child's ``body``; whatever it raises, the child ends here and never
    unwinds into the parent's code (``body`` exits 0 itself when it completed)."""
    try:
        body(*args)
    except BaseException:
        traceback.print_exc()
    os._exit(1)


def _read_exactly(fd: int, n: int, deadline: float) -> bytes:
    buf = b""
    while len(buf) < n:
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise TimeoutError("a floor process did not report in time")
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError("a floor process died")
        buf += chunk
    return buf


class Floor(NamedTuple):
    sockets: int
    senders: int
    p50: float  # ms, publish -> receive over every delivery
    p99: float
    max: float
    send_us: float  # CPU per send, every sender together
    receive_us: float

    def line(self) -> str:
        return (f"p50 {self.p50:.1f} ms, p99 {self.p99:.1f} ms, max {self.max:.1f} ms; CPU "
                f"{self.send_us:.1f} µs per send, {self.receive_us:.1f} µs per receive")


def _run(listeners: list[socket.socket], controls: list[int], outs: list[int],
         report_r: int, broadcasts: int, rate: float,
         children: int) -> tuple[list[float], float, float]:
    """The parent's side of one floor run: (latencies, receive CPU, send CPU)."""
    deadline = time.monotonic() + 120 + broadcasts / rate  # connecting 10,000 takes ~10 s
    for _ in range(children):
        _read_exactly(report_r, 1, deadline)
    for listener in listeners:
        listener.close()  # every sender has accepted its share
    time.sleep(0.5)  # pacing of the load, not synchronization: every peer said ready
    for _ in range(broadcasts):
        stamp = struct.pack("d", _now())
        for control in controls:
            os.write(control, stamp)
        time.sleep(1 / rate)
    latencies: list[float] = []
    receive_cpu = 0.0
    for out in outs:
        size = struct.unpack("q", _read_exactly(out, 8, deadline))[0]
        body = _read_exactly(out, size, deadline)
        receive_cpu += struct.unpack_from("d", body)[0]
        latencies += struct.unpack_from(f"{size // 8 - 1}d", body, 8)
    for control in controls:
        os.write(control, _STOP)
    send_cpu = sum(struct.unpack("d", _read_exactly(report_r, 8, deadline))[0]
                   for _ in listeners)
    return latencies, receive_cpu, send_cpu


def measure(sockets: int = 10_000, senders: int = 1, receivers: int = 4,
            broadcasts: int = 10, rate: float = 2.0) -> Floor:
    """One floor run: ``broadcasts`` broadcasts at ``rate``/s to ``sockets`` sockets held
    by ``senders`` processes (the caller's descriptor limit must allow it)."""
    per_pair = sockets // (senders * receivers)
    n = per_pair * senders * receivers
    listeners = []
    for _ in range(senders):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4096)
        listeners.append(listener)
    report_r, report_w = os.pipe()
    controls, pids = [], []
    for listener in listeners:
        control_r, control_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            _child(_sender, listener, per_pair * receivers, control_r, report_w)
        os.close(control_r)
        controls.append(control_w)
        pids.append(pid)
    outs = []
    ports = [listener.getsockname()[1] for listener in listeners]
    for _ in range(receivers):
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            _child(_receiver, ports, per_pair, broadcasts, out_w, report_w)
        os.close(out_w)
        outs.append(out_r)
        pids.append(pid)
    os.close(report_w)  # the children hold it: their reports, or EOF once all are gone
    try:
        latencies, receive_cpu, send_cpu = _run(listeners, controls, outs, report_r,
                                                broadcasts, rate, senders + receivers)
    except BaseException:
        for pid in pids:  # a child that died or hangs: end them all, then say why
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise
    finally:
        for listener in listeners:
            listener.close()
        for fd in (*controls, *outs, report_r):
            os.close(fd)
        for pid in pids:
            os.waitpid(pid, 0)
    latencies.sort()

    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    total = broadcasts * n
    return Floor(n, senders, q(0.5), q(0.99), q(1.0), send_cpu / total * 1e6,
                 receive_cpu / total * 1e6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sockets", type=int, default=10_000)
    ap.add_argument("--senders", type=int, default=1)
    ap.add_argument("--receivers", type=int, default=4)
    ap.add_argument("--broadcasts", type=int, default=10)
    ap.add_argument("--rate", type=float, default=2.0, help="broadcasts per second")
    a = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    f = measure(a.sockets, a.senders, a.receivers, a.broadcasts, a.rate)
    print(f"{f.sockets} sockets, {a.senders} sender(s), {a.receivers} receiver(s), "
          f"{a.broadcasts} broadcasts at {a.rate}/s: {f.line()}")


if __name__ == "__main__":
    main()
