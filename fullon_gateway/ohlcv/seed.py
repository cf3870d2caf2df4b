"""Demo history: a realistic random walk of market trades, loaded through the COPY loader.

Prices follow a geometric random walk with per-symbol volatility; trade arrivals are a
Poisson process whose rate follows the trading day (busier 13:00-21:00 UTC); sizes are
log-normal and the side leans with the price move. The walk is shifted so that it ends
at the symbol's ``price`` at ``end`` (default now): the demo's live simulator starts
from that price at that moment, so the chart continues without a jump.

``DEFAULT_SYMBOLS`` is the demo's one set of markets: the simulator streams exactly
these, and these have history.

Seeding is safe to repeat: a symbol that already holds trades before ``end`` is left
alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import asyncpg

from fullon_gateway.ohlcv import store
from fullon_gateway.ohlcv.loader import TradeIn, load_trades

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeedSymbol:
    exchange: str
    symbol: str
    price: float  # where the history ends (and the live simulator starts)
    daily_vol: float  # standard deviation of daily log returns
    tick: float  # price increment
    mean_size: float  # typical trade size in base units


DEFAULT_SYMBOLS: tuple[SeedSymbol, ...] = (
    SeedSymbol("kraken", "BTC/USD", 65_000.0, 0.030, 0.1, 0.05),
    SeedSymbol("kraken", "ETH/USD", 3_400.0, 0.040, 0.01, 0.8),
    SeedSymbol("kraken", "SOL/USD", 150.0, 0.055, 0.01, 12.0),
    SeedSymbol("binance", "BTC/USDT", 65_010.0, 0.030, 0.01, 0.05),
    SeedSymbol("binance", "ETH/USDT", 3_401.0, 0.040, 0.01, 0.8),
)


# The demo's history density; its live simulator scales trade sizes to match it.
HISTORY_TRADES_PER_MINUTE = 2.0


def _activity(ts: dt.datetime) -> float:
    """Relative trade rate over the UTC day: quiet nights, busy US/EU overlap."""
    hour = ts.hour + ts.minute / 60
    return 0.6 + 0.8 * math.exp(-((hour - 16.0) ** 2) / 18.0)


def _draws(spec: SeedSymbol, start: dt.datetime, end: dt.datetime, trades_per_minute: float,
           rng: random.Random) -> Iterator[tuple[dt.datetime, float, float, float, float]]:
    """(time, log-price step, size, side draw, type draw) per trade, in time order."""
    per_second_vol = spec.daily_vol / math.sqrt(86400)
    base_rate = trades_per_minute / 60  # trades per second
    ts = start
    while True:
        gap = rng.expovariate(base_rate * _activity(ts))
        ts += dt.timedelta(seconds=gap)
        if ts >= end:
            return
        step = rng.gauss(0, per_second_vol * math.sqrt(gap))
        size = round(spec.mean_size * rng.lognormvariate(0, 1) / math.exp(0.5), 8) or 1e-8
        yield ts, step, size, rng.random(), rng.random()


def random_walk(spec: SeedSymbol, start: dt.datetime, end: dt.datetime,
                trades_per_minute: float, rng: random.Random) -> Iterator[TradeIn]:
    """Trades of one symbol between start and end, in time order, the last one priced
    at ``spec.price`` (to the tick)."""
    # Two passes over the same draws: the first sums the steps, so the second can start
    # where the walk has to begin to end at spec.price.
    state = rng.getstate()
    drift = sum(step for _, step, *_ in _draws(spec, start, end, trades_per_minute, rng))
    rng.setstate(state)
    log_price = math.log(spec.price) - drift
    stamp = int(start.timestamp())
    for n, (ts, step, size, side_u, type_u) in enumerate(
            _draws(spec, start, end, trades_per_minute, rng), 1):
        log_price += step
        price = max(spec.tick, round(math.exp(log_price) / spec.tick) * spec.tick)
        side = "buy" if side_u < (0.5 + (0.2 if step > 0 else -0.2)) else "sell"
        yield TradeIn(f"seed-{stamp}-{n}", ts.replace(microsecond=ts.microsecond // 1000 * 1000),
                      round(price, 10), size, side, "market" if type_u < 0.7 else "limit")


async def seed_history(
    pool: asyncpg.Pool,
    days: float = 30,
    symbols: Sequence[SeedSymbol] = DEFAULT_SYMBOLS,
    *,
    trades_per_minute: float = HISTORY_TRADES_PER_MINUTE,
    end: dt.datetime | None = None,
    seed: int = 42,
) -> dict[str, int]:
    """Load ``days`` of random-walk trades ending at ``end`` (default now) per symbol.

    Returns ``{"exchange:symbol": trades inserted}``; symbols that already hold trades
    from before ``end`` are skipped (0): trades after it (the live simulator's) do not
    count. With the defaults: about 86,000 trades per symbol.
    """
    end = end or dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(days=days)
    rng = random.Random(seed)
    loaded: dict[str, int] = {}
    for spec in symbols:
        key = f"{spec.exchange}:{spec.symbol}"
        sid = await store.find_symbol(pool, spec.exchange, spec.symbol)
        if sid is not None and await pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ohlcv_trades WHERE symbol_id = $1 AND ts < $2)",
                sid, end):
            loaded[key] = 0
            continue
        result = await load_trades(pool, spec.exchange, spec.symbol,
                                   random_walk(spec, start, end, trades_per_minute, rng))
        loaded[key] = result.inserted
        log.info("seeded %d trades for %s", result.inserted, key)
    return loaded
