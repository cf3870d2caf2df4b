"""Bulk trade ingestion: COPY into a temp table, insert what is new, merge the 1m bars.

One statement does the work after the COPY: new trades are inserted with ``ON CONFLICT
DO NOTHING`` (idempotent on the exchange trade id), and only the trades really
inserted are folded into the 1-minute candles of the minutes they touch; a second
statement rebuilds the hourly roll-up of the hours those minutes belong to. A bar is
merged, never recomputed: open/close move only when the new batch holds an earlier
first / later last trade in ``(ts, trade_id)`` order, high/low widen, volume and
count add up. Candles are therefore a function of the set of trades, whatever the
order or the batching in which they arrive.

Each new or changed 1m bar is handed to the ``on_bars`` listeners after the commit,
which is how the live ``ohlcv`` stream gets them.
Over 300 lines on purpose: the COPY load and the bar upsert share one transaction.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import asyncpg

log = logging.getLogger(__name__)


class TradeIn(NamedTuple):
    """One market trade as the loader takes it.

    A TradeIn goes to COPY as it is, so its fields must have these types; plain tuples
    in the same order are accepted too and converted (str id, float price/volume).
    """

    trade_id: str
    ts: dt.datetime  # aware
    price: float
    volume: float
    side: str  # "buy" | "sell"
    type: str | None = None


Bar = dict[str, Any]  # {"timestamp", "open", "high", "low", "close", "vol"}
BarsListener = Callable[[str, str, list[Bar]], Awaitable[None] | None]


@dataclass(frozen=True)
class LoadResult:
    inserted: int
    duplicates: int
    bars: list[Bar] = field(default_factory=list)


# Rows per COPY + merge transaction: bounds the temp table and the lock time while
# keeping per-statement overhead negligible.
DEFAULT_CHUNK = 100_000

_TEMP_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS ohlcv_incoming (
    -- Arrival order inside the chunk (COPY fills it in input order): a trade id
    -- repeated in one batch keeps its first row.
    ord bigint GENERATED ALWAYS AS IDENTITY,
    trade_id text COLLATE "C" NOT NULL,
    ts timestamptz NOT NULL,
    price double precision NOT NULL,
    volume double precision NOT NULL,
    side text NOT NULL,
    type text
) ON COMMIT DELETE ROWS
"""
_COLUMNS = ("trade_id", "ts", "price", "volume", "side", "type")

# $1 = symbol_id. A trade id repeated inside one batch counts once (its first row).
# The 1m aggregate uses window functions over one sort of the new trades: ordered
# aggregates (array_agg(... ORDER BY ...)) sort every minute separately, which was
# measured at about 1.6x the cost on a bulk load.
_MERGE = """
WITH src AS (
    SELECT DISTINCT ON (trade_id) trade_id, ts, price, volume, side, type
    FROM ohlcv_incoming ORDER BY trade_id, ord
), ins AS (
    INSERT INTO ohlcv_trades (symbol_id, trade_id, ts, price, volume, side, type)
    SELECT $1, trade_id, ts, price, volume, side, type FROM src
    ON CONFLICT (symbol_id, trade_id) DO NOTHING
    RETURNING trade_id, ts, price, volume
), ranked AS (
    SELECT date_bin('60 seconds'::interval, ts, '1970-01-01 00:00:00+00'::timestamptz) AS m,
           row_number() OVER w AS rn,
           first_value(price) OVER whole AS open,
           max(price) OVER whole AS high,
           min(price) OVER whole AS low,
           last_value(price) OVER whole AS close,
           sum(volume) OVER whole AS vol,
           count(*) OVER whole AS n,
           first_value(ts) OVER whole AS first_ts,
           first_value(trade_id) OVER whole AS first_id,
           last_value(ts) OVER whole AS last_ts,
           last_value(trade_id) OVER whole AS last_id
    FROM ins
    WINDOW w AS (PARTITION BY date_bin('60 seconds'::interval, ts,
                                       '1970-01-01 00:00:00+00'::timestamptz)
                 ORDER BY ts, trade_id),
           whole AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
), agg AS (
    SELECT * FROM ranked WHERE rn = 1
), up AS (
    INSERT INTO ohlcv_candles_1m AS c
        (symbol_id, ts, open, high, low, close, vol, trades,
         first_ts, first_id, last_ts, last_id)
    SELECT $1, m, open, high, low, close, vol, n, first_ts, first_id, last_ts, last_id
    FROM agg
    ON CONFLICT (symbol_id, ts) DO UPDATE SET
        open = CASE WHEN (EXCLUDED.first_ts, EXCLUDED.first_id) < (c.first_ts, c.first_id)
                    THEN EXCLUDED.open ELSE c.open END,
        first_ts = CASE WHEN (EXCLUDED.first_ts, EXCLUDED.first_id) < (c.first_ts, c.first_id)
                        THEN EXCLUDED.first_ts ELSE c.first_ts END,
        first_id = CASE WHEN (EXCLUDED.first_ts, EXCLUDED.first_id) < (c.first_ts, c.first_id)
                        THEN EXCLUDED.first_id ELSE c.first_id END,
        close = CASE WHEN (EXCLUDED.last_ts, EXCLUDED.last_id) > (c.last_ts, c.last_id)
                     THEN EXCLUDED.close ELSE c.close END,
        last_ts = CASE WHEN (EXCLUDED.last_ts, EXCLUDED.last_id) > (c.last_ts, c.last_id)
                       THEN EXCLUDED.last_ts ELSE c.last_ts END,
        last_id = CASE WHEN (EXCLUDED.last_ts, EXCLUDED.last_id) > (c.last_ts, c.last_id)
                       THEN EXCLUDED.last_id ELSE c.last_id END,
        high = greatest(c.high, EXCLUDED.high),
        low = least(c.low, EXCLUDED.low),
        vol = c.vol + EXCLUDED.vol,
        trades = c.trades + EXCLUDED.trades
    RETURNING c.ts, c.open, c.high, c.low, c.close, c.vol
)
"""
# Either the changed bars themselves (for listeners), or only the hours they touch.
_MERGE_BARS = _MERGE + """
SELECT ts, open, high, low, close, vol, (SELECT coalesce(sum(n), 0) FROM agg) AS inserted
FROM up
"""
_MERGE_COUNT = _MERGE + """
SELECT (SELECT coalesce(sum(n), 0) FROM agg) AS inserted,
       (SELECT array_agg(DISTINCT date_bin('3600 seconds'::interval, ts,
                                           '1970-01-01 00:00:00+00'::timestamptz))
        FROM up) AS hours
"""

# Rebuild the hourly roll-up of the hours in $2 from their 1m bars. LATERAL pins the
# plan to one index range scan per hour: a plain join let the planner, misled by
# stale statistics on a new symbol, loop over every hour for every bar (measured:
# minutes instead of milliseconds for a 100,000-trade chunk).
_ROLLUP = """
INSERT INTO ohlcv_candles_1h AS h (symbol_id, ts, open, high, low, close, vol)
SELECT $1, hours.hour, bar.open, bar.high, bar.low, bar.close, bar.vol
FROM unnest($2::timestamptz[]) AS hours (hour)
CROSS JOIN LATERAL (
    SELECT (array_agg(m.open ORDER BY m.ts))[1] AS open, max(m.high) AS high,
           min(m.low) AS low, (array_agg(m.close ORDER BY m.ts DESC))[1] AS close,
           sum(m.vol) AS vol
    FROM ohlcv_candles_1m m
    WHERE m.symbol_id = $1 AND m.ts >= hours.hour AND m.ts < hours.hour + interval '1 hour'
) AS bar
WHERE bar.vol IS NOT NULL
ON CONFLICT (symbol_id, ts) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low,
    close = EXCLUDED.close, vol = EXCLUDED.vol
"""

# Loads of one symbol take turns (transaction-scoped advisory lock, keyed by symbol):
# the hourly roll-up re-reads the 1m bars, and two loads rebuilding the same hour at
# once would each miss the other's minutes.
_LOCK_SPACE = 0x4F484C43  # "OHLC": the first key of pg_advisory_xact_lock(int, int)


async def symbol_id_for(conn: asyncpg.Connection, exchange: str, symbol: str) -> int:
    """The id of (exchange, symbol), registering the pair on first use."""
    sid = await conn.fetchval(
        """INSERT INTO ohlcv_symbols (exchange, symbol) VALUES ($1, $2)
           ON CONFLICT (exchange, symbol) DO NOTHING RETURNING symbol_id""",
        exchange, symbol,
    )
    if sid is None:  # already there (or registered concurrently): read it
        sid = await conn.fetchval(
            "SELECT symbol_id FROM ohlcv_symbols WHERE exchange = $1 AND symbol = $2",
            exchange, symbol,
        )
    return int(sid)


async def _load_chunk(
    conn: asyncpg.Connection, exchange: str, symbol: str, records: Sequence[tuple[Any, ...]],
    want_bars: bool,
) -> tuple[int, list[Bar]]:
    async with conn.transaction():
        # Registered in the same transaction: a load that fails leaves no empty symbol.
        symbol_id = await symbol_id_for(conn, exchange, symbol)
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_SPACE, symbol_id)
        # The sorts of a 100,000-row chunk fit in memory instead of spilling to disk.
        await conn.execute("SET LOCAL work_mem = '64MB'")
        await conn.execute(_TEMP_TABLE)
        await conn.copy_records_to_table("ohlcv_incoming", records=records, columns=_COLUMNS)
        if want_bars:
            rows = await conn.fetch(_MERGE_BARS, symbol_id)
            inserted = int(rows[0]["inserted"]) if rows else 0
            hours = sorted({_hour(r["ts"]) for r in rows})
        else:
            row = await conn.fetchrow(_MERGE_COUNT, symbol_id)
            assert row is not None
            rows, inserted, hours = [], int(row["inserted"]), row["hours"] or []
        if hours:
            await conn.execute(_ROLLUP, symbol_id, hours)
    bars = sorted(
        ({"timestamp": r["ts"], "open": r["open"], "high": r["high"], "low": r["low"],
          "close": r["close"], "vol": r["vol"]} for r in rows),
        key=lambda bar: bar["timestamp"],
    )
    return inserted, bars


def _hour(ts: dt.datetime) -> dt.datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


async def load_trades(
    db: asyncpg.Pool | asyncpg.Connection,
    exchange: str,
    symbol: str,
    trades: Iterable[TradeIn | tuple[Any, ...]],
    *,
    chunk_size: int = DEFAULT_CHUNK,
    want_bars: bool = False,
) -> LoadResult:
    """COPY ``trades`` of one (exchange, symbol) into the store; returns what changed.

    With ``want_bars`` the result lists every new or changed 1m bar (in time order);
    a bulk load without listeners skips building them.

    Each chunk commits on its own: a failure part-way leaves the earlier chunks stored,
    and re-running the same load is harmless (idempotent on trade id).
    """
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            return await load_trades(conn, exchange, symbol, trades, chunk_size=chunk_size,
                                     want_bars=want_bars)
    conn = db
    inserted = received = 0
    bars: dict[dt.datetime, Bar] = {}
    chunk: list[tuple[Any, ...]] = []

    async def flush() -> None:
        nonlocal inserted
        n, changed = await _load_chunk(conn, exchange, symbol, chunk, want_bars)
        inserted += n
        for bar in changed:  # a later chunk's version of a bar supersedes the earlier one
            bars[bar["timestamp"]] = bar
        chunk.clear()

    for trade in trades:
        if type(trade) is TradeIn:  # already typed (the HTTP validator, seed): as is
            chunk.append(trade)
        else:
            t = TradeIn(*trade)
            chunk.append(TradeIn(str(t.trade_id), t.ts, float(t.price), float(t.volume),
                                 t.side, t.type))
        received += 1
        if len(chunk) >= chunk_size:
            await flush()
    if chunk:
        await flush()
    return LoadResult(inserted, received - inserted, [bars[k] for k in sorted(bars)])


class OhlcvLoader:
    """The app's loader: ``load_trades`` on the pool, plus the new-bar listeners.

    A listener ``on_bars(exchange, symbol, bars)`` (sync or async) is called after each
    load that created or changed 1m bars, with those bars in time order. A failing
    listener is logged and does not fail the load: the trades are already committed.
    """

    def __init__(self, pool: asyncpg.Pool, on_bars: BarsListener | None = None,
                 chunk_size: int = DEFAULT_CHUNK) -> None:
        self.pool = pool
        self.chunk_size = chunk_size
        self._listeners: list[BarsListener] = [on_bars] if on_bars else []

    def add_listener(self, on_bars: BarsListener) -> None:
        self._listeners.append(on_bars)

    def remove_listener(self, on_bars: BarsListener) -> None:
        self._listeners.remove(on_bars)

    async def load(self, exchange: str, symbol: str,
                   trades: Iterable[TradeIn | tuple[Any, ...]]) -> LoadResult:
        result = await load_trades(self.pool, exchange, symbol, trades,
                                   chunk_size=self.chunk_size, want_bars=bool(self._listeners))
        if result.bars:
            await self._notify(exchange, symbol, result.bars)
        return result

    async def _notify(self, exchange: str, symbol: str, bars: list[Bar]) -> None:
        for listener in list(self._listeners):
            try:
                outcome = listener(exchange, symbol, bars)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("ohlcv bars listener failed for %s %s", exchange, symbol)
