"""The receiving side of the fan-out benchmark: many WebSocket clients in one process.

A minimal RFC 6455 client on a bare ``asyncio.Protocol`` instead of aiohttp's client:
per frame it costs a header parse and one ``orjson.loads``, several times less CPU
than ``ClientWebSocketResponse.receive()``. The client shares two cores with the
servers, so every microsecond it saves goes to the server being measured. It offers
no extensions, so no server negotiates permessage-deflate with it.

Every ticker frame carries the publisher's ``bench_ts`` (time.time()), ``bench_n``
(counter per symbol) and ``bench_level`` (which load step it belongs to) inside
``result``: the client counts frames of the current level, records
publish->receive latency in a histogram (0.1 ms buckets up to 100 ms, then 1 ms up
to 2 s) and counts frames that arrive out of order per socket.

Run as ``worker(pipe)`` in a child process (multiprocessing "spawn"); the parent
sends commands as dicts and gets one reply dict each (see ``Worker.handle``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import struct
import threading
import time
from typing import Any, cast

import orjson

HIST_SIZE = 2901


def bucket(seconds: float) -> int:
    ms = seconds * 1000.0
    if ms < 100.0:
        return int(ms * 10.0) if ms > 0 else 0
    if ms < 2000.0:
        return 1000 + int(ms - 100.0)
    return HIST_SIZE - 1


def bucket_ms(index: int) -> float:
    """The middle of a bucket, in milliseconds."""
    if index < 1000:
        return (index + 0.5) / 10.0
    if index < HIST_SIZE - 1:
        return 100.0 + (index - 1000) + 0.5
    return 2000.0


def percentile(hist: list[int], p: float) -> float:
    total = sum(hist)
    if not total:
        return float("nan")
    rank = p / 100.0 * total
    seen = 0
    for i, count in enumerate(hist):
        seen += count
        if seen >= rank and count:
            return bucket_ms(i)
    return bucket_ms(HIST_SIZE - 1)


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame; the zero mask key leaves the payload as is (RFC-valid)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\x00\x00\x00\x00" + payload


class Stats:
    """Counters shared by every socket of a worker."""

    def __init__(self) -> None:
        self.level = -1
        self.measure_from = 0.0  # frames of messages published before this are warm-up
        self.deadline = 0.0  # frames received after this are late
        self.count = 0  # measured frames of the current level received by the deadline
        self.late = 0  # measured frames received after the deadline
        self.any_frames = 0  # every ticker update, any level (to see when a server is quiet)
        self.reordered = 0
        self.hist = [0] * HIST_SIZE
        self.closed = 0
        self.close_codes: dict[int, int] = {}

    def reset(self, level: int, measure_from: float, deadline: float) -> None:
        self.level = level
        self.measure_from = measure_from
        self.deadline = deadline
        self.count = 0
        self.late = 0
        self.reordered = 0
        self.hist = [0] * HIST_SIZE


class WSClient(asyncio.Protocol):
    def __init__(self, stats: Stats, host: str, port: int, path: str, subscribe: bytes) -> None:
        self.stats = stats
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: "
            f"{base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.subscribe = subscribe
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.ready: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.started = time.perf_counter()
        self.last_n = -1
        self.open = False

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transport is no asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.open = True
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.open:
            self.stats.closed += 1
        self.open = False
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the snapshot: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        if self.upgraded and not self.buf and data[0] == 0x81 and len(data) > 4:
            # The common read: exactly one whole text frame (one ticker) and nothing
            # buffered. Parsed from ``data`` itself: no copy into the buffer and back
            # (the client shares the two cores with the server it measures).
            n = data[1]
            if n == 126 and len(data) == 4 + ((data[2] << 8) | data[3]):
                self._on_text(data[4:], time.time())
                return
            if n < 126 and len(data) == 2 + n:
                self._on_text(data[2:], time.time())
                return
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self._fail(f"upgrade refused: {status.decode(errors='replace')}")
                return
            del buf[:end + 4]
            self.upgraded = True
            assert self.transport is not None
            self.transport.write(client_frame(1, self.subscribe))
        pos = 0
        size = len(buf)
        now = time.time()
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            hdr = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                hdr = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 10], "big")
                hdr = 10
            end = pos + hdr + n
            if end > size:
                break
            opcode = b0 & 0x0F
            if opcode == 1:
                self._on_text(buf[pos + hdr:end], now)
            elif opcode == 9 and self.transport is not None:  # ping -> pong
                self.transport.write(client_frame(10, bytes(buf[pos + hdr:end])))
            elif opcode == 8:
                code = (buf[pos + hdr] << 8 | buf[pos + hdr + 1]) if n >= 2 else 1005
                self.stats.close_codes[code] = self.stats.close_codes.get(code, 0) + 1
                self.close()
                return
            pos = end
        if pos:
            del buf[:pos]

    # -- frames --------------------------------------------------------------------------
    def _on_text(self, payload: bytes | bytearray, now: float) -> None:
        msg = orjson.loads(payload)
        if isinstance(msg, list):
            for item in msg:
                self._on_message(item, now)
        else:
            self._on_message(msg, now)

    def _on_message(self, msg: dict[str, Any], now: float) -> None:
        result = msg.get("result")
        if msg.get("snapshot"):
            if not self.ready.done():
                self.ready.set_result(time.perf_counter() - self.started)
            return
        if msg.get("success") is False:
            self._fail(f"refused: {msg.get('error_code')} {msg.get('error')}")
            return
        if not isinstance(result, dict) or "bench_ts" not in result:
            return  # the ack, or a ticker that is not ours
        stats = self.stats
        stats.any_frames += 1
        n = result["bench_n"]
        if n <= self.last_n:
            stats.reordered += 1
        self.last_n = n
        if result["bench_level"] == stats.level:
            ts = result["bench_ts"]
            if ts >= stats.measure_from:
                if now <= stats.deadline:
                    stats.count += 1
                else:
                    stats.late += 1
                stats.hist[bucket(now - ts)] += 1

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        self.close()

    def close(self) -> None:
        if self.transport is not None and self.open:
            self.open = False
            try:
                if self.upgraded:  # a close frame means nothing to an HTTP server
                    self.transport.write(client_frame(8, struct.pack("!H", 1000)))
            finally:
                self.transport.close()


class Worker:
    def __init__(self) -> None:
        self.stats = Stats()
        self.groups: dict[str, list[WSClient]] = {}

    async def connect(self, group: str, host: str, port: int, specs: list[tuple[str, bytes]],
                      concurrency: int, timeout: float) -> dict[str, Any]:
        """Open one socket per (path, subscribe message) and wait for each snapshot.

        Returns each socket's connect+upgrade+auth+subscribe+snapshot time, in ms.
        """
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(concurrency)
        clients = self.groups.setdefault(group, [])
        times: list[float] = []
        errors: list[str] = []
        deadline = loop.time() + timeout

        async def one(path: str, sub: bytes) -> None:
            async with sem:
                left = deadline - loop.time()
                if left <= 0:
                    errors.append("connect phase timed out")
                    return
                client = WSClient(self.stats, host, port, path, sub)
                try:
                    await asyncio.wait_for(
                        loop.create_connection(lambda: client, host, port), left)
                    clients.append(client)
                    times.append(await asyncio.wait_for(client.ready, deadline - loop.time())
                                 * 1000)
                except (OSError, TimeoutError) as exc:
                    client.close()
                    errors.append(repr(exc)[:200])

        await asyncio.gather(*(one(p, s) for p, s in specs))
        return {"times": times, "errors": errors}

    async def close(self, group: str) -> dict[str, Any]:
        clients = self.groups.pop(group, [])
        for c in clients:
            c.close()
        await asyncio.sleep(0)
        return {"closed": len(clients)}

    async def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        s = self.stats
        if op == "connect":
            return await self.connect(cmd["group"], cmd["host"], cmd["port"], cmd["specs"],
                                      cmd["concurrency"], cmd["timeout"])
        if op == "begin":
            s.reset(cmd["level"], cmd["measure_from"], cmd["deadline"])
            return {}
        if op == "stats":
            return {"count": s.count, "late": s.late, "any": s.any_frames, "reordered": s.reordered,
                    "hist": s.hist if cmd.get("hist") else None, "closed": s.closed,
                    "close_codes": dict(s.close_codes)}
        if op == "close":
            return await self.close(cmd["group"])
        raise ValueError(op)


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def worker(pipe: Any, use_uvloop: bool = True) -> None:
    """Child process entry: serve commands from ``pipe`` until {"op": "quit"}.

    With uvloop installed (and ``use_uvloop``), the client's event loop costs less per
    readable socket, leaving more of the two cores to the servers (which never use it).
    """
    raise_fd_limit()
    if use_uvloop:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        w = Worker()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def read_pipe() -> None:
            # A thread, not loop.add_reader: uvloop makes a watched fd non-blocking,
            # and Connection.recv needs a blocking one.
            while True:
                try:
                    cmd = pipe.recv()
                except (EOFError, OSError):
                    cmd = {"op": "quit"}
                loop.call_soon_threadsafe(inbox.put_nowait, cmd)
                if cmd["op"] == "quit":
                    return

        threading.Thread(target=read_pipe, daemon=True).start()
        while True:
            cmd = await inbox.get()
            if cmd["op"] == "quit":
                for group in list(w.groups):
                    await w.close(group)
                pipe.send({})
                return
            try:
                pipe.send(await w.handle(cmd))
            except Exception as exc:  # report, keep serving: the parent decides
                pipe.send({"error": repr(exc)})

    asyncio.run(main())
