"""OHLCV history benchmark: candle reads over HTTP, ingestion via HTTP and via COPY,
against computing the same candles in Python from the raw trades, in one run.

    python scripts/bench/ohlcv.py [--trades 1000000] [--others 3] [--reps 200] [--keep]

Uses its own database (fgw_bench_ohlcv, created fresh and dropped at the end unless
--keep; BENCH_DATABASE_URL to override the server) and runs the real gateway app in
a subprocess on a loopback port.

1. COPY-load N trades (default 1,000,000) of kraken BTC/USD over ~520 days, plus
   3 other symbols interleaved in the same tables: trades/s through the loader.
2. HTTP ingestion: POST batches of 5,000 trades: trades/s.
3. Latency p50/p99 of GET /candles for 1,000 1h, 500 1d and 1,000 1m candles (random
   end_time in the history), sequential requests over keep-alive.
4. Baseline: the same candles computed in Python from the raw trades of the window
   (fetched with asyncpg, aggregated in a loop), checked equal to the HTTP answer.
Targets: 1h p50 <= 30 ms, COPY >= 50,000 trades/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import math
import os
import random
import socket
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fullon_gateway.ohlcv.loader import TradeIn, load_trades  # noqa: E402
from fullon_gateway.store.pool import _with_database  # noqa: E402

SERVER = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = "fgw_bench_ohlcv"
DB_URL = _with_database(SERVER, DB_NAME)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN = ("bench-admin@example.com", "bench-admin-password")
START = dt.datetime(2023, 1, 2, tzinfo=dt.UTC)
SPAN_DAYS = 520
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# ------------------------------------------------------------------ server subprocess

def serve(port: int) -> None:
    """Run the real app (the benchmark's own process, so no CLI is needed)."""
    from aiohttp import web

    from fullon_gateway.app import create_app
    from fullon_gateway.keys import AUTH
    from fullon_gateway.settings import load_settings

    settings = dataclasses.replace(
        load_settings(config_path=ROOT / "config" / "gateway.yaml", environ={}),
        database_url=DB_URL, redis_url=REDIS_URL, redis_prefix="benchohlcv:", keyspace_events="off",
        jwt_secret="bench-secret-" + "z" * 40, port=port, log_level="WARNING",
        max_body_bytes=4 * 1024 * 1024,
    )
    app = create_app(settings)

    async def admin(app: web.Application) -> None:
        with contextlib.suppress(Exception):  # already there from an earlier run
            await app[AUTH].create_user(ADMIN[0], ADMIN[1], name="bench", role="admin")

    app.on_startup.append(admin)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(600):
            if proc.returncode is not None:
                raise SystemExit("gateway exited early")
            try:
                async with s.get(url + "/health/live") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)  # polling a subprocess; bounded
    raise SystemExit("gateway not ready")


# ------------------------------------------------------------------ data

def random_walk(n: int, prefix: str, seed: int, start_price: float) -> list[TradeIn]:
    rng = random.Random(seed)
    span = SPAN_DAYS * 86400
    step = span / n
    price = start_price
    out = []
    t = 0.0
    for i in range(n):
        t += rng.expovariate(1 / step)
        if t >= span:
            t = span - 0.001 * (n - i)
        price = round(price * math.exp(rng.gauss(0, 0.0008)), 2)
        out.append(TradeIn(f"{prefix}{i}", START + dt.timedelta(seconds=t), price,
                           round(rng.uniform(0.0001, 1.5), 6), "buy" if i % 2 else "sell"))
    return out


def python_candles(rows: list[Any], width: int) -> list[dict[str, Any]]:
    """The baseline: raw trades (ts, trade_id, price, volume) -> candles, in Python."""
    rows = sorted(rows, key=lambda r: (r[0], r[1].encode()))
    buckets: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        buckets[int((r[0] - EPOCH).total_seconds()) // width * width].append(r)
    return [{"timestamp": EPOCH + dt.timedelta(seconds=b), "open": g[0][2],
             "high": max(x[2] for x in g), "low": min(x[2] for x in g), "close": g[-1][2],
             "vol": sum(x[3] for x in g)} for b, g in sorted(buckets.items())]


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


# ------------------------------------------------------------------ main

async def run(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    admin_conn = await asyncpg.connect(SERVER)
    await admin_conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    await admin_conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    await admin_conn.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", str(port))
    try:
        await wait_ready(url, proc)  # the app migrates the database on startup
        conn = await asyncpg.connect(DB_URL)

        print(f"generating {args.trades:,} trades + {args.others} x {args.trades // 10:,} ...")
        main_trades = random_walk(args.trades, "m", 1, 30_000.0)
        others = [random_walk(args.trades // 10, f"o{k}-", 10 + k, 100.0 * (k + 1))
                  for k in range(args.others)]

        # 1. COPY ingestion (the others first, so the main symbol lands among them).
        for k, trades in enumerate(others):
            await load_trades(conn, "kraken" if k % 2 else "binance", f"OTH{k}/USD:OTH{k}",
                              trades)
        t0 = time.perf_counter()
        result = await load_trades(conn, "kraken", "BTC/USD", main_trades)
        copy_s = time.perf_counter() - t0
        assert result.inserted == args.trades, result.inserted
        await conn.execute("VACUUM ANALYZE")
        copy_rate = args.trades / copy_s

        async with aiohttp.ClientSession() as s:
            async with s.post(url + "/api/v1/auth/login",
                              json={"email": ADMIN[0], "password": ADMIN[1]}) as r:
                headers = {"Authorization": f"Bearer {(await r.json())['access_token']}"}

            # 2. HTTP ingestion, batches of 5,000 into a fresh symbol.
            http_trades = random_walk(args.http_trades, "h", 99, 50.0)
            batches = [[{"trade_id": t.trade_id, "timestamp": t.ts.isoformat(),
                         "price": t.price, "volume": t.volume, "side": t.side}
                        for t in http_trades[i:i + 5000]]
                       for i in range(0, len(http_trades), 5000)]
            t0 = time.perf_counter()
            for batch in batches:
                async with s.post(url + "/api/v1/ohlcv/trades/kraken/HTTP/USD",
                                  json={"trades": batch}, headers=headers) as r:
                    assert r.status == 200, await r.text()
            http_rate = len(http_trades) / (time.perf_counter() - t0)

            # 3 + 4. Candle reads vs the Python baseline.
            sid = await conn.fetchval(
                "SELECT symbol_id FROM ohlcv_symbols WHERE symbol = 'BTC/USD'")
            rng = random.Random(5)
            report = []
            for tf, width, limit, base_reps in (("1h", 3600, 1000, 20), ("1d", 86400, 500, 3),
                                                ("1m", 60, 1000, 20)):
                # Ends late enough that `limit` non-empty candles exist before them:
                # with sparse trades (1m) only a fraction of the buckets hold any.
                per_bucket = args.trades * width / (SPAN_DAYS * 86400)
                filled = 1 - math.exp(-per_bucket)
                lo_end = START + dt.timedelta(
                    seconds=width * limit * (1 + 1.5 * (1 / filled - 1)), days=1)
                span = (START + dt.timedelta(days=SPAN_DAYS) - lo_end).total_seconds()
                ends = [lo_end + dt.timedelta(seconds=rng.uniform(0, max(span, 0)))
                        for _ in range(args.reps)]
                lat = []
                for end in ends:
                    t0 = time.perf_counter()
                    async with s.get(f"{url}/api/v1/ohlcv/candles/kraken/BTC/USD/{tf}",
                                     params={"limit": str(limit),
                                             "end_time": end.isoformat()},
                                     headers=headers) as r:
                        body = await r.json()
                    lat.append(time.perf_counter() - t0)
                    assert r.status == 200 and body["count"] == limit, (tf, body.get("count"))
                base = []
                for end in ends[:base_reps]:
                    # The baseline is told where the answer starts (the gateway's first
                    # candle): a head start, it only has to fetch and aggregate.
                    async with s.get(f"{url}/api/v1/ohlcv/candles/kraken/BTC/USD/{tf}",
                                     params={"limit": str(limit), "end_time": end.isoformat()},
                                     headers=headers) as r:
                        got = (await r.json())["candles"]
                    lo = dt.datetime.fromisoformat(got[0]["timestamp"].replace("Z", "+00:00"))
                    t0 = time.perf_counter()
                    hi = EPOCH + dt.timedelta(
                        seconds=(int((end - EPOCH).total_seconds()) // width + 1) * width)
                    rows = await conn.fetch(
                        "SELECT ts, trade_id, price, volume FROM ohlcv_trades "
                        "WHERE symbol_id = $1 AND ts >= $2 AND ts < $3", sid, lo, hi)
                    candles = python_candles(list(rows), width)[-limit:]
                    base.append(time.perf_counter() - t0)
                # Same answer both ways (the last baseline window against the gateway's).
                assert len(got) == len(candles), (tf, len(got), len(candles))
                assert [c["close"] for c in got] == [c["close"] for c in candles], tf
                assert all(math.isclose(a["vol"], b["vol"], rel_tol=1e-9)
                           for a, b in zip(got, candles, strict=True)), tf
                report.append((tf, limit, lat, base))
        await conn.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
        if not args.keep:
            admin_conn = await asyncpg.connect(SERVER)
            await admin_conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            await admin_conn.close()

    print(f"\nstore: {args.trades:,} trades for kraken BTC/USD over {SPAN_DAYS} days, "
          f"{args.others} other symbols x {args.trades // 10:,}")
    print(f"ingest via COPY loader   {copy_rate:>10,.0f} trades/s   (target >= 50,000)")
    print(f"ingest via HTTP POST     {http_rate:>10,.0f} trades/s   "
          f"({args.http_trades:,} trades, batches of 5,000)")
    print(f"\n{'candles':<14}{'gateway p50':>12}{'p99':>9}{'python p50':>13}{'p99':>9}"
          f"{'speed-up':>10}")
    for tf, limit, lat, base in report:
        g50, b50 = pct(lat, 50), pct(base, 50)
        print(f"{limit:>5} x {tf:<6}{g50:>10.2f}ms{pct(lat, 99):>7.2f}ms{b50:>11.1f}ms"
              f"{pct(base, 99):>7.1f}ms{b50 / g50:>9.0f}x")
    h1 = pct(report[0][2], 50)
    print(f"\n1h p50 {h1:.2f} ms (target <= 30): {'ok' if h1 <= 30 else 'MISSED'}; "
          f"COPY {copy_rate:,.0f}/s (target >= 50,000): "
          f"{'ok' if copy_rate >= 50_000 else 'MISSED'}")
    print(f"gateway requests: {args.reps} per timeframe, sequential; python baseline: "
          f"{', '.join(str(len(b)) for _, _, _, b in report)} windows")
    print(f"total {time.perf_counter() - began:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=1_000_000)
    parser.add_argument("--others", type=int, default=3)
    parser.add_argument("--http-trades", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
