"""fullon-style writes (hash + notification) against the gateway's own Publisher.

Starts a redis-server of its own (the gateway sets keyspace notifications there) and
1, then 2 gateway processes on it, and measures in the same run, for both paths:

- sequenced/s: ticker writes issued as fast as the gateways sequence them (the load
  generator writes RESP itself and stays at most LEAD writes ahead of the seq counter;
  2,000 symbols, so no write coalesces with another), changes sequenced per second (the
  counter's growth until it stops), and the gateways' CPU seconds per change;
- delivered/s to one WebSocket subscriber of the exchange at that saturation;
- publish -> receive latency p50/p99 at a fixed rate (--rate, default 5000/s, half the
  10,000/s target), each tick carrying its send time; "added" is fullon p99 minus
  Publisher p99 of the same round; hop1 is the fullon write -> sequenced part of it.

fullon path: HSET tickers:{ex} + SET ticker_time + PUBLISH ticker_updates (exactly
fullon_cache's set_ticker); the gateways' watchers sequence it. Publisher path:
Publisher.ticker (one script: snapshot + history + publish). Each configuration runs
--repeat times; the median is printed with the ratios. The load generator, Redis and
the gateways share the machine's two cores; the report says what else was running.

    python scripts/bench/fullon.py --seconds 4 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import hiredis
import orjson
import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import cli, cpu_seconds, machine_busy_seconds, start_gateway

from fullon_gateway.embedded import RedisProcess
from fullon_gateway.stream.publish import Publisher
from fullon_gateway.stream.wire import pack

EXCHANGE = "benchx"
LEAD = 1000  # writes not yet sequenced, at most (below the symbol count: no coalescing)
EMAIL, PASSWORD = "bench@example.com", "bench-password-123"


def fullon_tick(symbol: str, price: float, sent: float) -> bytes:
    return orjson.dumps({"symbol": symbol, "exchange": EXCHANGE, "price": price, "volume": 1.0,
                         "time": sent, "bid": price, "ask": price, "last": price,
                         "sent": sent})


class Link:
    """The load generator's Redis connection, written as RESP directly and read by a
    task of its own, with at most ``window`` writes outstanding.

    Through redis-py a pipelined write cost this process ~0.15 ms, so one client could
    not offer more than ~6,000 writes/s on this machine and was what the "sequenced/s"
    figures measured. Packed here it costs a few microseconds: the rates are the
    gateway's and Redis', not the load generator's.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 window: int) -> None:
        self.reader, self.writer, self.window = reader, writer, window
        self.outstanding = 0
        self._parser = hiredis.Reader()
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, window: int = 600) -> Link:
        options = parse_url(url)
        reader, writer = await asyncio.open_connection(options["host"], options["port"])
        return cls(reader, writer, window)

    async def send(self, data: bytes, replies: int, per_write: int) -> None:
        while self.outstanding >= self.window * per_write:
            self._room.clear()
            await self._room.wait()
        self.outstanding += replies
        self._idle.clear()
        self.writer.write(data)
        await self.writer.drain()

    async def drained(self) -> None:
        while self.outstanding:
            await self._idle.wait()

    async def _read(self) -> None:
        while data := await self.reader.read(1 << 16):
            self._parser.feed(data)
            while (reply := self._parser.gets()) is not False:
                if isinstance(reply, hiredis.ReplyError):
                    raise RuntimeError(f"bench write failed: {reply}")
                self.outstanding -= 1
            self._room.set()
            if not self.outstanding:
                self._idle.set()

    async def aclose(self) -> None:
        self._task.cancel()
        self.writer.close()


async def write_fullon(link: Link, symbols: list[str], n: int, start: int) -> None:
    """``n`` set_ticker writes as fullon_cache issues them (3 commands each), pipelined."""
    out = []
    key = f"tickers:{EXCHANGE}".encode()
    for i in range(n):
        sym = symbols[(start + i) % len(symbols)]
        now = time.time()
        text = fullon_tick(sym, float(start + i), now)
        out.append(pack(b"HSET", key, sym, text))
        out.append(pack(b"SET", f"ticker_time:{EXCHANGE}:{sym}", repr(now)))
        out.append(pack(b"PUBLISH", f"ticker_updates:{EXCHANGE}:{sym}", text))
    await link.send(b"".join(out), 3 * n, 3)


async def write_publisher(link: Link, pub: Publisher, symbols: list[str], n: int,
                          start: int) -> None:
    """``n`` Publisher.ticker changes: the publisher builds each command (its own cost
    per change is a service's), then they are written like the fullon writes."""
    pipe = pub.redis.pipeline(transaction=False)
    for i in range(n):
        await pub.ticker(EXCHANGE, symbols[(start + i) % len(symbols)],
                         {"price": float(start + i), "sent": time.time()}, pipeline=pipe)
    out = [pack(*(a if isinstance(a, bytes | str) else str(a) for a in args))
           for args, _options in pipe.command_stack]
    await link.send(b"".join(out), n, 1)


async def write(path: str, link: Link, pub: Publisher, symbols: list[str], n: int,
                start: int) -> None:
    if path == "fullon":
        await write_fullon(link, symbols, n, start)
    else:
        await write_publisher(link, pub, symbols, n, start)


async def settle(r: aioredis.Redis, quiet: float = 0.3) -> tuple[int, float]:
    """(seq counter, monotonic time it last moved) once it stood still for ``quiet``
    seconds: every notified write sequenced."""
    last, moved = -1, time.monotonic()
    while True:
        now = int(await r.get("gateway:seq") or 0)
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved >= quiet:
            return now, moved
        await asyncio.sleep(0.02)  # a benchmark waiting for quiescence, not a test


class Subscriber:
    """One WebSocket subscriber of every ticker of the bench exchange."""

    def __init__(self) -> None:
        self.count = 0
        self.latencies: list[float] = []
        self.record = False
        self._task: asyncio.Task[None] | None = None

    async def start(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.ws = await session.ws_connect(url.replace("http", "ws") + "/api/v1/cache/ws",
                                           params={"token": token}, max_msg_size=0)
        await self.ws.send_json({"action": "subscribe", "request_id": 1,
                                 "params": {"stream": "tickers", "exchange": EXCHANGE}})
        while not json.loads((await self.ws.receive()).data).get("snapshot"):
            pass
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            # Counted without parsing (the client shares the cores with the gateway).
            if '"tickers_update"' not in msg.data:
                continue
            self.count += 1
            if self.record:
                self.latencies.append(time.time() - orjson.loads(msg.data)["result"]["sent"])

    async def quiet(self, quiet: float = 0.3) -> None:
        """Once nothing arrived for ``quiet`` seconds."""
        last, moved = -1, time.monotonic()
        while self.count != last or time.monotonic() - moved < quiet:
            if self.count != last:
                last, moved = self.count, time.monotonic()
            await asyncio.sleep(0.02)  # a benchmark waiting for quiescence, not a test

    async def stop(self) -> None:
        await self.ws.close()
        if self._task:
            self._task.cancel()


async def saturate(path: str, r: aioredis.Redis, link: Link, pub: Publisher,
                   sub: Subscriber, symbols: list[str], seconds: float, pids: list[int],
                   redis_pid: int) -> dict[str, float]:
    seq0, _ = await settle(r)
    cpu0 = sum(cpu_seconds(p) for p in pids)
    rcpu0 = cpu_seconds(redis_pid)
    delivered0 = sub.count
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        await write(path, link, pub, symbols, 200, n)
        n += 200
        # Closed loop on sequencing: never more than LEAD writes ahead of the counter.
        # Flooding instead measures collapse, not capacity: the watcher coalesces what
        # it could not read in time (2 writes of a symbol = 1 change) and Redis buffers
        # the rest for the pub/sub connections.
        while n - (int(await r.get("gateway:seq") or 0) - seq0) > LEAD:  # noqa: ASYNC110
            await asyncio.sleep(0.002)  # polling Redis' counter: nothing to wait on here
    await link.drained()
    wrote = time.monotonic() - start
    seq1, last_moved = await settle(r)
    elapsed = last_moved - start
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    rcpu = cpu_seconds(redis_pid) - rcpu0
    changes = seq1 - seq0
    return {"writes_per_s": n / wrote, "sequenced_per_s": changes / max(elapsed, wrote),
            "cpu_ms_per_change": 1000 * cpu / max(changes, 1),
            "redis_cpu_ms_per_change": 1000 * rcpu / max(changes, 1),
            "delivered_per_s": (sub.count - delivered0) / max(elapsed, wrote),
            "sequenced_fraction": changes / n}


async def paced(path: str, r: aioredis.Redis, link: Link, pub: Publisher, sub: Subscriber,
                symbols: list[str], seconds: float, rate: float) -> dict[str, float]:
    await settle(r)
    await sub.quiet()  # the saturation's backlog delivered: it must not count as latency
    sub.latencies = []
    sub.record = True
    batch = max(1, int(rate / 100))  # every 10 ms
    start = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate)
        if n < due:
            k = min(due - n, batch * 4)
            await write(path, link, pub, symbols, k, n)
            n += k
        else:
            await asyncio.sleep(0.002)
    await link.drained()
    await settle(r)
    sub.record = False
    lat = sorted(sub.latencies)
    if not lat:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "received": 0}
    hop = await first_hop(r) if path == "fullon" else []
    return {"p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[int(len(lat) * 0.99)],
            "hop1_p99_ms": 1000 * hop[int(len(hop) * 0.99)] if hop else 0.0,
            "received": len(lat), "rate": n / seconds}


async def first_hop(r: aioredis.Redis) -> list[float]:
    """Where a fullon change's latency goes: write -> sequenced (the notification, the
    watcher's batch, the step: the change's ``ts`` is Redis' clock in the step) for the
    newest history entries; the rest of the total is the second hop (the published
    change to the hub, the fan-out, the socket, the client)."""
    entries = await r.xrevrange(f"history:tickers:{EXCHANGE}", count=2000)
    out = []
    for _id, fields in entries:
        msg = orjson.loads(fields[b"m"])
        if msg.get("src") == "fullon" and msg.get("raw"):
            out.append(msg["ts"] / 1000 - orjson.loads(msg["raw"])["sent"])
    return sorted(out)


async def round_for(urls: list[str], redis_url: str, pids: list[int], redis_pid: int,
                    args: argparse.Namespace) -> dict[str, dict[str, float]]:
    r = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
        redis_url, max_connections=32))
    pub = Publisher(r, "", 1000)
    symbols = [f"S{i:04d}/USD" for i in range(args.symbols)]
    await pub.ticker(EXCHANGE, "PRIME/USD", {"price": 0.0, "sent": time.time()})  # the counter
    link = await Link.open(redis_url)  # (and the script, loaded for the raw EVALSHAs)
    out: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession() as session:
        async with session.post(urls[0] + "/api/v1/auth/login",
                                json={"email": EMAIL, "password": PASSWORD}) as resp:
            token = (await resp.json())["access_token"]
        sub = Subscriber()
        await sub.start(session, urls[-1], token)
        for path in args.paths.split(","):
            sat = await saturate(path, r, link, pub, sub, symbols, args.seconds, pids,
                                 redis_pid)
            lat = await paced(path, r, link, pub, sub, symbols, args.seconds, args.rate)
            out[path] = {**sat, **lat}
        await sub.stop()
    await link.aclose()
    await r.aclose()
    return out


def median_of(rounds: list[dict[str, dict[str, float]]], path: str, key: str) -> float:
    return statistics.median(rd[path][key] for rd in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--gateways", default="1,2")
    parser.add_argument("--paths", default="publisher,fullon",
                        help="which paths to drive (profiling one alone)")
    parser.add_argument("--gateway-path", default=None,
                        help="run another tree's gateway (a baseline worktree)")
    args = parser.parse_args()
    redis_proc = RedisProcess(Path(tempfile.mkdtemp(prefix="fgw-bench-fullon-")))
    redis_proc.start()
    assert redis_proc.process is not None
    redis_pid = redis_proc.process.pid
    print(f"own redis-server on {redis_proc.url}; load {os.getloadavg()} at start")
    busy0, total0 = machine_busy_seconds()
    try:
        for count in (int(c) for c in args.gateways.split(",")):
            env = {"FULLON_REDIS_URL": redis_proc.url, "FULLON_REDIS_PREFIX": "",
                   "FULLON_KEYSPACE_EVENTS": "configure",  # its own server: allowed
                   # one database for the processes of a run: a token works on each
                   "FULLON_DATABASE_URL": os.environ.get(
                       "BENCH_DATABASE_URL",
                       f"postgresql://postgres@127.0.0.1:5432/fgw_bench_fullon{count}")}
            gws = [start_gateway(f"fullon{count}{i}", env, gateway_path=args.gateway_path)
                   for i in range(count)]
            cli(gws[0], "create-user", "--email", EMAIL, "--password", PASSWORD)
            try:
                rounds = [asyncio.run(round_for([g.url for g in gws], redis_proc.url,
                                                [g.proc.pid for g in gws],
                                                redis_pid, args))
                          for _ in range(args.repeat)]
            finally:
                for g in gws:
                    g.stop()
            print(f"\n== {count} gateway process(es), median of {args.repeat} rounds")
            keys = ("writes_per_s", "sequenced_per_s", "sequenced_fraction", "cpu_ms_per_change",
                    "redis_cpu_ms_per_change", "delivered_per_s", "p50_ms", "p99_ms",
                    "hop1_p99_ms")
            print(f"{'':10}" + "".join(f"{k.replace('_per_', '/'):>13}" for k in keys))
            for path in args.paths.split(","):
                print(f"{path:10}" + "".join(f"{median_of(rounds, path, k):13.3f}"
                                              for k in keys))
            if args.paths != "publisher,fullon":
                continue
            ratio = median_of(rounds, "fullon", "delivered_per_s") / max(
                median_of(rounds, "publisher", "delivered_per_s"), 1e-9)
            added = median_of(rounds, "fullon", "p99_ms") - median_of(rounds, "publisher",
                                                                      "p99_ms")
            print(f"fullon/publisher delivered ratio {ratio:.2f} (target >= 0.7); "
                  f"fullon sequenced {median_of(rounds, 'fullon', 'sequenced_per_s'):.0f}/s "
                  f"(target >= 10000); p99 added at {args.rate:.0f}/s: {added:.2f} ms "
                  f"(target <= 5)")
    finally:
        redis_proc.stop()
    busy1, total1 = machine_busy_seconds()
    print(f"\nmachine busy {100 * (busy1 - busy0) / max(total1 - total0, 1e-9):.0f}% during "
          f"the run; load {os.getloadavg()} at end")


if __name__ == "__main__":
    main()
