"""Candles of every timeframe, aggregated in SQL, against a Python reference.

Trades are generated over five weeks that cross two month boundaries and six week
boundaries, with trades exactly on bucket edges, trades sharing a timestamp (the
tie is broken by trade_id in byte order) and batches loaded out of order. Every
timeframe is read back through the real HTTP endpoint, page by page.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any

import pytest

from fullon_gateway.keys import OHLCV_LOADER
from fullon_gateway.ohlcv.loader import TradeIn
from fullon_gateway.ohlcv.timeframes import VALID_TIMEFRAMES

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
WIDTHS = {"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600,
          "2h": 7200, "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200,
          "1d": 86400, "3d": 259200}


def reference_bucket(tf: str, ts: dt.datetime) -> dt.datetime:
    """Opening time of ts's bucket, computed independently of the code under test."""
    if tf == "1M":
        return dt.datetime(ts.year, ts.month, 1, tzinfo=UTC)
    if tf == "1w":
        day = dt.datetime(ts.year, ts.month, ts.day, tzinfo=UTC)
        return day - dt.timedelta(days=day.isoweekday() - 1)  # back to Monday
    seconds = int((ts - EPOCH).total_seconds() // WIDTHS[tf]) * WIDTHS[tf]
    return EPOCH + dt.timedelta(seconds=seconds)


def reference_candles(trades: list[TradeIn], tf: str) -> list[dict[str, Any]]:
    """open = first trade, close = last, in (timestamp, trade_id) order; vol = sum."""
    groups: dict[dt.datetime, list[TradeIn]] = defaultdict(list)
    for t in sorted(trades, key=lambda t: (t.ts, t.trade_id.encode())):
        groups[reference_bucket(tf, t.ts)].append(t)
    return [
        {"timestamp": b, "open": g[0].price, "high": max(t.price for t in g),
         "low": min(t.price for t in g), "close": g[-1].price,
         "vol": sum(t.volume for t in g)}
        for b, g in sorted(groups.items())
    ]


def generate_trades(seed: int, n: int) -> list[TradeIn]:
    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 29, tzinfo=UTC)  # a Monday, three days before February
    span = 36 * 86400
    price = 100.0
    trades = []
    for i in range(n):
        price = round(price * (1 + rng.gauss(0, 0.002)), 4)
        ts = start + dt.timedelta(seconds=rng.uniform(0, span))
        ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)  # ms, as exchanges send
        trades.append(TradeIn(str(i), ts, price, round(rng.uniform(0.001, 2), 6),
                              rng.choice(("buy", "sell"))))
    edges = [dt.datetime(2024, 2, 1, tzinfo=UTC), dt.datetime(2024, 3, 1, tzinfo=UTC),
             dt.datetime(2024, 2, 5, tzinfo=UTC), dt.datetime(2024, 2, 12, tzinfo=UTC),
             dt.datetime(2024, 2, 4, 12, tzinfo=UTC), dt.datetime(2024, 2, 10, tzinfo=UTC)]
    for k, edge in enumerate(edges):
        # Exactly on the edge, and the last millisecond before it.
        trades.append(TradeIn(f"edge{k}a", edge, 90.0 + k, 1.0, "buy"))
        trades.append(TradeIn(f"edge{k}b", edge - dt.timedelta(milliseconds=1), 80.0 + k,
                              1.0, "sell"))
    # Same timestamp, ids whose byte order differs from their numeric order.
    tie = dt.datetime(2024, 2, 20, 10, 30, 15, tzinfo=UTC)
    for tid, px in (("9", 111.0), ("10", 222.0), ("100", 333.0), ("A", 444.0)):
        trades.append(TradeIn(tid + "tie", tie, px, 0.5, "buy"))
    return trades


async def load_in_shuffled_batches(client: Any, exchange: str, symbol: str,
                                   trades: list[TradeIn], seed: int) -> None:
    shuffled = trades[:]
    random.Random(seed).shuffle(shuffled)
    loader = client.app[OHLCV_LOADER]
    for i in range(0, len(shuffled), 700):
        await loader.load(exchange, symbol, shuffled[i:i + 700])


async def read_all(client: Any, headers: dict[str, str], path: str) -> list[dict[str, Any]]:
    """Every candle, paging forward with start_time (the first `limit` from start_time)."""
    out: list[dict[str, Any]] = []
    start = "2000-01-01T00:00:00Z"
    while True:
        resp = await client.get(path, params={"start_time": start, "limit": "1000"},
                                headers=headers)
        body = await resp.json()
        assert resp.status == 200, body
        out.extend(body["candles"])
        if body["count"] < 1000:
            return out
        last = dt.datetime.fromisoformat(body["candles"][-1]["timestamp"].replace("Z", "+00:00"))
        start = (last + dt.timedelta(milliseconds=1)).isoformat()


def assert_same(got: list[dict[str, Any]], want: list[dict[str, Any]], tf: str) -> None:
    assert [c["timestamp"] for c in got] == [
        w["timestamp"].isoformat().replace("+00:00", "Z") for w in want], tf
    for g, w in zip(got, want, strict=True):
        assert (g["open"], g["high"], g["low"], g["close"]) == (
            w["open"], w["high"], w["low"], w["close"]), (tf, g, w)
        assert g["vol"] == pytest.approx(w["vol"], rel=1e-9), (tf, g, w)


async def test_every_timeframe_matches_python_reference(client, make_account):
    """Each of the 15 timeframes equals the Python reference candle for candle:
    open first / close last trade in (timestamp, trade_id) order, high/low, volume sum,
    UTC buckets from the epoch, Monday weeks and calendar months, edges included."""
    admin = await make_account(role="admin")
    trades = generate_trades(seed=7, n=4000)
    await load_in_shuffled_batches(client, "kraken", "BTC/USD:BTC", trades, seed=1)
    for tf in VALID_TIMEFRAMES:
        path = f"/api/v1/ohlcv/candles/kraken/BTC/USD:BTC/{tf}"
        got = await read_all(client, admin.headers, path)
        assert_same(got, reference_candles(trades, tf), tf)


async def test_week_and_month_buckets_open_where_expected(client, make_account):
    """1w candles open on Mondays 00:00 UTC and 1M candles on the 1st 00:00 UTC; a trade
    on the edge belongs to the new bucket, one a millisecond before to the old one."""
    admin = await make_account()
    sunday_late = dt.datetime(2024, 2, 4, 23, 59, 59, 999000, tzinfo=UTC)
    monday = dt.datetime(2024, 2, 5, tzinfo=UTC)
    feb_end = dt.datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)
    march = dt.datetime(2024, 3, 1, tzinfo=UTC)
    trades = [TradeIn("1", sunday_late, 10.0, 1, "buy"), TradeIn("2", monday, 20.0, 2, "buy"),
              TradeIn("3", feb_end, 30.0, 3, "sell"), TradeIn("4", march, 40.0, 4, "sell")]
    await client.app[OHLCV_LOADER].load("kraken", "ETH/USD", trades)
    week = await (await client.get("/api/v1/ohlcv/candles/kraken/ETH/USD/1w",
                                   headers=admin.headers)).json()
    assert [(c["timestamp"], c["open"], c["close"], c["vol"]) for c in week["candles"]] == [
        ("2024-01-29T00:00:00Z", 10.0, 10.0, 1.0),
        ("2024-02-05T00:00:00Z", 20.0, 20.0, 2.0),
        ("2024-02-26T00:00:00Z", 30.0, 40.0, 7.0),
    ]
    month = await (await client.get("/api/v1/ohlcv/candles/kraken/ETH/USD/1M",
                                    headers=admin.headers)).json()
    assert [(c["timestamp"], c["open"], c["close"]) for c in month["candles"]] == [
        ("2024-02-01T00:00:00Z", 10.0, 30.0), ("2024-03-01T00:00:00Z", 40.0, 40.0)]


async def test_late_trades_merge_into_existing_bars(client, make_account):
    """A later batch with an earlier first trade, a later last trade and a new high
    changes the stored 1m bar (and the hour above it) exactly as if loaded at once,
    and the loader reports the changed bars to its listeners."""
    admin = await make_account()
    seen: list[tuple[str, str, list[dict[str, Any]]]] = []
    loader = client.app[OHLCV_LOADER]
    loader.add_listener(lambda ex, sym, bars: seen.append((ex, sym, bars)))
    t0 = dt.datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)
    first = [TradeIn("b", t0, 10.0, 1, "buy"), TradeIn("c", t0 + dt.timedelta(seconds=5), 11.0,
                                                     1, "buy")]
    late = [TradeIn("a", t0 - dt.timedelta(seconds=20), 9.0, 1, "sell"),
            TradeIn("d", t0 + dt.timedelta(seconds=20), 15.0, 2, "buy"),
            TradeIn("c", t0 + dt.timedelta(seconds=5), 11.0, 1, "buy")]  # a duplicate
    r1 = await loader.load("kraken", "SOL/USD", first)
    r2 = await loader.load("kraken", "SOL/USD", late)
    assert (r1.inserted, r1.duplicates, r2.inserted, r2.duplicates) == (2, 0, 2, 1)
    want = reference_candles(first + late[:2], "1m")
    for tf in ("1m", "1h"):
        body = await (await client.get(f"/api/v1/ohlcv/candles/kraken/SOL/USD/{tf}",
                                       headers=admin.headers)).json()
        c = body["candles"]
        assert len(c) == 1
        assert (c[0]["open"], c[0]["high"], c[0]["low"], c[0]["close"], c[0]["vol"]) == (
            9.0, 15.0, 9.0, 15.0, 5.0) == (want[0]["open"], want[0]["high"], want[0]["low"],
                                          want[0]["close"], want[0]["vol"])
    assert [s[:2] for s in seen] == [("kraken", "SOL/USD")] * 2
    assert seen[1][2][0]["open"] == 9.0 and seen[1][2][0]["close"] == 15.0


async def test_reloading_everything_changes_nothing(client, make_account):
    """Loading the same trades again (in another order) inserts nothing and leaves
    every candle as it was."""
    admin = await make_account()
    trades = generate_trades(seed=3, n=500)
    await load_in_shuffled_batches(client, "binance", "ETH/USDT", trades, seed=2)
    path = "/api/v1/ohlcv/candles/binance/ETH/USDT/15m"
    before = await read_all(client, admin.headers, path)
    result = await client.app[OHLCV_LOADER].load("binance", "ETH/USDT", reversed(trades))
    assert (result.inserted, result.duplicates, result.bars) == (0, len(trades), [])
    assert await read_all(client, admin.headers, path) == before


async def test_buckets_do_not_depend_on_session_time_zone(client, settings):
    """Day, week and month candles are UTC buckets even on a connection whose TimeZone
    is not UTC (a pooled connection loses SET TIME ZONE on release: RESET ALL)."""
    from fullon_gateway.keys import DB
    from fullon_gateway.ohlcv import store
    from fullon_gateway.ohlcv.timeframes import TIMEFRAMES

    trades = generate_trades(seed=11, n=600)
    await load_in_shuffled_batches(client, "kraken", "XRP/USD", trades, seed=4)
    # A connection of the app's pool: its search_path is the mode's (attach: gateway).
    async with client.app[DB].acquire() as conn:
        await conn.execute("SET TIME ZONE 'America/New_York'")
        sid = await store.find_symbol(conn, "kraken", "XRP/USD")
        assert sid is not None
        for tf in ("4h", "1d", "3d", "1w", "1M"):
            got = await store.candles(conn, sid, TIMEFRAMES[tf], None, None, 1000)
            want = reference_candles(trades, tf)
            assert [c["timestamp"] for c in got] == [w["timestamp"] for w in want], tf
            assert [c["close"] for c in got] == [w["close"] for w in want], tf


async def test_repeated_trade_id_in_one_batch_keeps_first_row(client, make_account):
    """A trade id twice in one batch is stored once, with its first row's values, and
    counted once as a duplicate; plain tuples are accepted and typed."""
    admin = await make_account()
    ts = dt.datetime(2024, 7, 1, 9, 30, tzinfo=UTC)
    result = await client.app[OHLCV_LOADER].load("kraken", "ADA/USD", [
        (17, ts, 1, 3, "buy", None),            # int id and numbers: converted
        ("17", ts, 2.0, 5.0, "sell", "limit"),  # same id again: ignored
    ])
    assert (result.inserted, result.duplicates) == (1, 1)
    body = await (await client.get("/api/v1/ohlcv/trades/kraken/ADA/USD",
                                   headers=admin.headers)).json()
    assert body["trades"] == [{"timestamp": "2024-07-01T09:30:00Z", "price": 1.0,
                               "volume": 3.0, "side": "buy", "type": None, "trade_id": "17"}]


async def test_failed_load_leaves_no_trace(client, make_account):
    """A load the database refuses (a price of zero from a Python caller) stores
    nothing, not even the symbol: reads stay 404 and the catalog stays empty."""
    import asyncpg

    admin = await make_account()
    ts = dt.datetime(2024, 7, 1, tzinfo=UTC)
    with pytest.raises(asyncpg.CheckViolationError):
        await client.app[OHLCV_LOADER].load("kraken", "BAD/USD",
                                            [TradeIn("1", ts, 0.0, 1.0, "buy")])
    resp = await client.get("/api/v1/ohlcv/trades/kraken/BAD/USD", headers=admin.headers)
    assert resp.status == 404
    body = await (await client.get("/api/v1/ohlcv/exchanges", headers=admin.headers)).json()
    assert body["exchanges"] == []
