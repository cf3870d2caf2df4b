"""Demo history: a realistic random walk of market trades, loaded through the COPY loader.

Prices follow a geometric random walk with per-symbol volatility; trade arrivals are a
Poisson process whose rate follows the trading day (busier 13:00-21:00 UTC); sizes are
log-normal and the side leans with the price move. The history ends now, so the demo's
live simulator continues where it stops.

Seeding is safe to repeat: a symbol that already holds trades is left alone.
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
    start_price: float
    daily_vol: float  # standard deviation of daily log returns
    tick: float  # price increment
    mean_size: float  # typical trade size in base units


DEFAULT_SYMBOLS: tuple[SeedSymbol, ...] = (
    SeedSymbol("kraken", "BTC/USD", 65_000.0, 0.030, 0.1, 0.05),
    SeedSymbol("kraken", "ETH/USD", 3_400.0, 0.040, 0.01, 0.8),
    SeedSymbol("kraken", "BTC/USD:BTC", 65_050.0, 0.031, 0.5, 0.2),
    SeedSymbol("binance", "SOL/USDT", 150.0, 0.055, 0.01, 12.0),
)


def _activity(ts: dt.datetime) -> float:
    """Relative trade rate over the UTC day: quiet nights, busy US/EU overlap."""
    hour = ts.hour + ts.minute / 60
    return 0.6 + 0.8 * math.exp(-((hour - 16.0) ** 2) / 18.0)


def random_walk(spec: SeedSymbol, start: dt.datetime, end: dt.datetime,
                trades_per_minute: float, rng: random.Random) -> Iterator[TradeIn]:
    """Trades of one symbol between start and end, in time order."""
    log_price = math.log(spec.start_price)
    per_second_vol = spec.daily_vol / math.sqrt(86400)
    base_rate = trades_per_minute / 60  # trades per second
    ts = start
    n = 0
    stamp = int(start.timestamp())
    while True:
        gap = rng.expovariate(base_rate * _activity(ts))
        ts += dt.timedelta(seconds=gap)
        if ts >= end:
            return
        step = rng.gauss(0, per_second_vol * math.sqrt(gap))
        log_price += step
        price = max(spec.tick, round(math.exp(log_price) / spec.tick) * spec.tick)
        size = round(spec.mean_size * rng.lognormvariate(0, 1) / math.exp(0.5), 8) or 1e-8
        side = "buy" if rng.random() < (0.5 + (0.2 if step > 0 else -0.2)) else "sell"
        n += 1
        yield TradeIn(f"seed-{stamp}-{n}", ts.replace(microsecond=ts.microsecond // 1000 * 1000),
                      round(price, 10), size, side, "market" if rng.random() < 0.7 else "limit")


async def seed_history(
    pool: asyncpg.Pool,
    days: float = 30,
    symbols: Sequence[SeedSymbol] = DEFAULT_SYMBOLS,
    *,
    trades_per_minute: float = 2.0,
    end: dt.datetime | None = None,
    seed: int = 42,
) -> dict[str, int]:
    """Load ``days`` of random-walk trades ending at ``end`` (default now) per symbol.

    Returns ``{"exchange:symbol": trades inserted}``; symbols that already hold trades
    are skipped (0). With the defaults: about 86,000 trades per symbol.
    """
    end = end or dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(days=days)
    rng = random.Random(seed)
    loaded: dict[str, int] = {}
    for spec in symbols:
        key = f"{spec.exchange}:{spec.symbol}"
        sid = await store.find_symbol(pool, spec.exchange, spec.symbol)
        if sid is not None and await pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ohlcv_trades WHERE symbol_id = $1)", sid):
            loaded[key] = 0
            continue
        result = await load_trades(pool, spec.exchange, spec.symbol,
                                   random_walk(spec, start, end, trades_per_minute, rng))
        loaded[key] = result.inserted
        log.info("seeded %d trades for %s", result.inserted, key)
    return loaded
