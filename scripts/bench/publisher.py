"""The publishing side of the fan-out benchmark, in its own process.

``contract`` (default) does what fullon_cache ``set_ticker`` does, which docs/contract.md
section 8 says reaches ticker subscribers:

    HSET {prefix}tickers:{exchange} {symbol} <Tick JSON>
    PUBLISH {prefix}ticker_updates:{exchange}:{symbol} <Tick JSON>

written as raw RESP on one socket (pipelined, replies counted), so the publisher
costs a few microseconds of CPU per message instead of redis-py's tens.
``gateway`` calls ``fullon_gateway.publish.Publisher.ticker`` (or ``.trade``) instead
(snapshot, history and publish with a seq in one Lua script); it needs the gateway on
PYTHONPATH and costs far more per message (one script call each, through redis-py).

Messages go to the given (exchange, symbol) channels in turn. The Tick JSON carries
``bench_ts`` (time.time() when the message is built),
``bench_n`` (a counter per symbol) and ``bench_level`` (the load step).
Messages are paced in 2 ms slots: each slot sends what is due, so the rate is exact
over the step and bursts are at most one slot long.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import orjson

SLOT = 0.002


class Window:
    """One load step in wall-clock time: publish from ``start`` for ``warmup + seconds``;
    only messages built at or after ``measure_from`` are counted (and measured)."""

    def __init__(self, start: float, warmup: float, seconds: float) -> None:
        self.start = start
        self.measure_from = start + warmup
        self.end = start + warmup + seconds
        self.length = warmup + seconds

    def wait_start(self) -> None:
        delay = self.start - time.time()
        if delay > 0:
            time.sleep(delay)


def _resp(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


def tick(exchange: str, symbol: str, n: int, level: int, now: float) -> bytes:
    price = 100.0 + (n % 1000) / 100.0
    return orjson.dumps({
        "symbol": symbol, "exchange": exchange, "price": price, "volume": 1234.5,
        "time": now, "bid": price - 0.01, "ask": price + 0.01, "last": price,
        "bench_ts": now, "bench_n": n, "bench_level": level,
    })


Pair = tuple[str, str]  # (exchange, symbol): one channel of the load


class RawPublisher:
    def __init__(self, host: str, port: int, db: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = 0  # replies not read yet
        if db:
            self.sock.sendall(_resp(b"SELECT", str(db).encode()))
            self.pending += 1
        self.drain(block=True)

    def drain(self, block: bool = False) -> None:
        """Read replies (one line each: integers or errors); block until all read."""
        self.sock.setblocking(block)
        try:
            while self.pending:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("redis closed the connection")
                if data.startswith(b"-") or b"\n-" in data:
                    raise RuntimeError(f"redis error: {data[:200]!r}")
                self.pending -= data.count(b"\r\n")
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)

    def run(self, prefix: str, pairs: list[Pair], rate: float, window: Window, level: int,
            counters: dict[Pair, int], stream: str = "tickers") -> dict[str, Any]:
        if stream != "tickers":
            raise ValueError("the contract publisher (set_ticker) only publishes tickers")
        hkeys = [f"{prefix}tickers:{ex}".encode() for ex, _ in pairs]
        chans = [f"{prefix}ticker_updates:{ex}:{sym}".encode() for ex, sym in pairs]
        fields = [sym.encode() for _, sym in pairs]
        sent = [0] * len(pairs)
        total = int(rate * window.length)
        i = 0
        window.wait_start()
        began = time.perf_counter()
        while i < total:
            due = min(total, int((time.perf_counter() - began) * rate) + 1)
            if due > i:
                out = []
                now = time.time()  # one stamp per slot: sent together, in one write
                counted = now >= window.measure_from
                while i < due:
                    k = i % len(pairs)
                    n = counters.get(pairs[k], 0)
                    counters[pairs[k]] = n + 1
                    body = tick(pairs[k][0], pairs[k][1], n, level, now)
                    out.append(_resp(b"HSET", hkeys[k], fields[k], body))
                    out.append(_resp(b"PUBLISH", chans[k], body))
                    if counted:
                        sent[k] += 1
                    i += 1
                self.pending += len(out)
                self.sock.sendall(b"".join(out))
                self.drain()
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(min(max(delay, SLOT / 2), SLOT))
        elapsed = time.perf_counter() - began
        self.drain(block=True)
        return {"sent": sent, "seconds": elapsed}


class GatewayPublisher:
    """fullon_gateway.publish.Publisher (needs the gateway tree on PYTHONPATH)."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as aioredis

        from fullon_gateway.publish import Publisher  # the gateway tree, on sys.path

        self.loop = asyncio.new_event_loop()
        self.redis = aioredis.Redis.from_url(url)
        self.pub = Publisher(self.redis, prefix)

    def run(self, prefix: str, pairs: list[Pair], rate: float, window: Window, level: int,
            counters: dict[Pair, int], stream: str = "tickers") -> dict[str, Any]:
        return self.loop.run_until_complete(
            self._run(pairs, rate, window, level, counters, stream))

    async def _run(self, pairs: list[Pair], rate: float, window: Window, level: int,
                   counters: dict[Pair, int], stream: str) -> dict[str, Any]:
        publish = self.pub.ticker if stream == "tickers" else self.pub.trade
        sent = [0] * len(pairs)
        total = int(rate * window.length)
        i = 0
        window.wait_start()
        began = time.perf_counter()
        while i < total:
            due = min(total, int((time.perf_counter() - began) * rate) + 1)
            batch = []
            now = time.time()
            counted = now >= window.measure_from
            while i < due:
                k = i % len(pairs)
                ex, sym = pairs[k]
                n = counters.get(pairs[k], 0)
                counters[pairs[k]] = n + 1
                batch.append(publish(ex, sym, orjson.loads(tick(ex, sym, n, level, now))))
                sent[k] += counted
                i += 1
            for j in range(0, len(batch), 64):  # bounded: redis-py's pool has a limit
                await asyncio.gather(*batch[j:j + 64])
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(min(max(delay, SLOT / 2), SLOT))
        return {"sent": sent, "seconds": time.perf_counter() - began}


def worker(pipe: Any, kind: str, redis_url: str, gateway_path: str = "") -> None:
    """Child process: {"op": "run", prefix, pairs: [[exchange, symbol]], rate, start,
    warmup, seconds, level, stream} -> {"sent": [counted messages per pair], "seconds"}.
    Messages go to the pairs in turn."""
    import sys
    from urllib.parse import urlparse

    if gateway_path:
        sys.path.insert(0, gateway_path)
    u = urlparse(redis_url)
    counters: dict[str, dict[Pair, int]] = {}
    pubs: dict[str, Any] = {}

    def publisher(prefix: str) -> Any:
        if kind == "contract":
            if "raw" not in pubs:
                pubs["raw"] = RawPublisher(u.hostname or "127.0.0.1", u.port or 6379,
                                           int((u.path or "/0").lstrip("/") or 0))
            return pubs["raw"]
        if prefix not in pubs:
            pubs[prefix] = GatewayPublisher(redis_url, prefix)
        return pubs[prefix]

    while True:
        cmd = pipe.recv()
        if cmd["op"] == "quit":
            pipe.send({})
            return
        try:
            c = counters.setdefault(cmd["prefix"], {})
            pairs = [(ex, sym) for ex, sym in cmd["pairs"]]
            window = Window(cmd["start"], cmd["warmup"], cmd["seconds"])
            pipe.send(publisher(cmd["prefix"]).run(
                cmd["prefix"], pairs, cmd["rate"], window,
                cmd["level"], c, cmd.get("stream", "tickers")))
        except Exception as exc:
            pipe.send({"error": repr(exc)})
