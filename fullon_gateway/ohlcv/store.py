"""Reads over the OHLCV store: symbols, trades, and candles of every timeframe.

Every timeframe above 1m is aggregated in SQL from the 1m candles, over whole buckets
only: range bounds are moved to bucket edges in Python first, so the first and last
candle of an answer are never computed from part of their bucket.

Range semantics (shared by candles and trades, see docs/ohlcv.md):
- a candle belongs to the range when its opening time t has start_time <= t <= end_time
  (a trade: its timestamp); the candle still covers its whole bucket;
- only ``start_time`` given: the first ``limit`` items from start_time on;
- otherwise: the last ``limit`` items up to end_time (or the newest);
- always answered oldest first.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

import asyncpg

from fullon_gateway.ohlcv.timeframes import MAX_TIME, MIN_TIME, TIMEFRAMES, Timeframe, clamp

# After this many narrowing windows (sparse data), one plain query finishes the job.
_MAX_WINDOWS = 3

Conn = Any  # an asyncpg Pool or Connection: both have fetch/fetchval


async def find_symbol(db: Conn, exchange: str, symbol: str) -> int | None:
    sid = await db.fetchval(
        "SELECT symbol_id FROM ohlcv_symbols WHERE exchange = $1 AND symbol = $2",
        exchange, symbol,
    )
    return None if sid is None else int(sid)


async def exchange_exists(db: Conn, exchange: str) -> bool:
    return bool(await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM ohlcv_symbols WHERE exchange = $1)", exchange))


async def list_exchanges(db: Conn) -> list[str]:
    rows = await db.fetch("SELECT DISTINCT exchange FROM ohlcv_symbols ORDER BY exchange")
    return [r["exchange"] for r in rows]


async def list_symbols(db: Conn, exchange: str) -> list[str]:
    rows = await db.fetch(
        "SELECT symbol FROM ohlcv_symbols WHERE exchange = $1 ORDER BY symbol", exchange)
    return [r["symbol"] for r in rows]


# ---------------------------------------------------------------- candles

@cache
def _candle_sql(tf_name: str, descending: bool) -> str:
    """Candles with opening time in [$2, $3), at most $4, for symbol $1."""
    order = "DESC" if descending else "ASC"
    if tf_name in ("1m", "1h"):  # stored as they are served
        table = "ohlcv_candles_1m" if tf_name == "1m" else "ohlcv_candles_1h"
        return f"""SELECT ts, open, high, low, close, vol FROM {table}
                   WHERE symbol_id = $1 AND ts >= $2 AND ts < $3
                   ORDER BY ts {order} LIMIT $4"""
    tf = TIMEFRAMES[tf_name]
    bucket = tf.bucket_sql("ts")
    table = _source_table(tf)
    # open/close are those of the bucket's first and last source bar: the bucket's
    # min(ts)/max(ts), then one primary-key lookup each. Measured ~30% faster than
    # ordered aggregates (array_agg(open ORDER BY ts)), which sort every bucket.
    return f"""WITH b AS (
                   SELECT {bucket} AS bucket, min(ts) AS first_ts, max(ts) AS last_ts,
                          max(high) AS high, min(low) AS low, sum(vol) AS vol
                   FROM {table}
                   WHERE symbol_id = $1 AND ts >= $2 AND ts < $3
                   GROUP BY bucket ORDER BY bucket {order} LIMIT $4)
               SELECT b.bucket, f.open, b.high, b.low, l.close, b.vol
               FROM b
               JOIN {table} f ON f.symbol_id = $1 AND f.ts = b.first_ts
               JOIN {table} l ON l.symbol_id = $1 AND l.ts = b.last_ts
               ORDER BY b.bucket {order}"""


def _source_table(tf: Timeframe) -> str:
    """1m bars for timeframes under an hour, the hourly roll-up for the rest.

    Every bucket of 1h and more (1h..3d from the epoch, Monday weeks, calendar months)
    is a whole number of UTC hours, so aggregating hours gives the same candle as
    aggregating the minutes, from 60x fewer rows.
    """
    return "ohlcv_candles_1h" if tf.kind != "fixed" or tf.seconds >= 3600 else "ohlcv_candles_1m"


def _candle(r: asyncpg.Record) -> dict[str, Any]:
    return {"timestamp": r[0], "open": r[1], "high": r[2], "low": r[3], "close": r[4],
            "vol": r[5]}


async def candles(
    db: Conn, symbol_id: int, tf: Timeframe, start: dt.datetime | None,
    end: dt.datetime | None, limit: int,
) -> list[dict[str, Any]]:
    """Candles of ``tf`` for one symbol, oldest first (see the module's range rules)."""
    lo = tf.ceil(clamp(start)) if start is not None else MIN_TIME
    hi = tf.shift(tf.floor(clamp(end)), 1) if end is not None else MAX_TIME
    if lo >= hi or limit <= 0:
        return []
    from_start = start is not None and end is None
    sql = _candle_sql(tf.name, not from_start)
    if tf.name in ("1m", "1h"):  # already an index range scan that stops after `limit` rows
        rows = await db.fetch(sql, symbol_id, lo, hi, limit)
    else:
        rows = await _windowed(db, _source_table(tf), sql, symbol_id, tf, lo, hi, limit,
                               from_start)
    out = [_candle(r) for r in rows]
    if not from_start:
        out.reverse()
    return out


async def _windowed(
    db: Conn, table: str, sql: str, symbol_id: int, tf: Timeframe,
    lo: dt.datetime, hi: dt.datetime, limit: int, from_start: bool,
) -> list[asyncpg.Record]:
    """Run ``sql`` over [lo, hi) but only over the window that can hold the answer.

    Without it, "the last 1000 hourly candles" would aggregate the whole history of the
    symbol just to keep the newest 1000. The window starts at the newest (or oldest)
    row in range and reaches back ``limit`` buckets; when gaps leave it short, the next
    window continues from where it stopped (windows are bucket-aligned, so no bucket
    is ever split between two of them).
    """
    rows: list[asyncpg.Record] = []
    for attempt in range(_MAX_WINDOWS + 1):
        need = limit - len(rows)
        if need <= 0 or lo >= hi:
            break
        if attempt == _MAX_WINDOWS:
            rows.extend(await db.fetch(sql, symbol_id, lo, hi, need))
            break
        edge = await db.fetchval(
            f"SELECT {'min' if from_start else 'max'}(ts) FROM {table} "
            "WHERE symbol_id = $1 AND ts >= $2 AND ts < $3",
            symbol_id, lo, hi,
        )
        if edge is None:
            break
        if from_start:
            w_lo, w_hi = lo, min(hi, tf.shift(tf.floor(edge), need))
        else:
            w_lo, w_hi = max(lo, tf.shift(tf.floor(edge), -(need - 1))), hi
        rows.extend(await db.fetch(sql, symbol_id, w_lo, w_hi, need))
        if from_start:
            lo = w_hi
        else:
            hi = w_lo
    return rows


# ---------------------------------------------------------------- trades

async def trades(
    db: Conn, symbol_id: int, start: dt.datetime | None, end: dt.datetime | None, limit: int,
) -> list[dict[str, Any]]:
    """Trades of one symbol with start <= ts <= end, oldest first (module's range rules)."""
    from_start = start is not None and end is None
    order = "ASC" if from_start else "DESC"
    rows = await db.fetch(
        f"""SELECT ts, price, volume, side, type, trade_id FROM ohlcv_trades
            WHERE symbol_id = $1 AND ts >= $2 AND ts <= $3
            ORDER BY ts {order}, trade_id {order} LIMIT $4""",
        symbol_id, start or MIN_TIME, end or MAX_TIME, limit,
    )
    out = [{"timestamp": r[0], "price": r[1], "volume": r[2], "side": r[3], "type": r[4],
            "trade_id": r[5]} for r in rows]
    if not from_start:
        out.reverse()
    return out
