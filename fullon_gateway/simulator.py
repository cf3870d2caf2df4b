"""The demo's market simulator: one random walk per market, and what follows from it.

The markets are ``ohlcv.seed.DEFAULT_SYMBOLS`` (the demo's one set). Each starts where
its stored history ends (the last stored trade, else the price its seeded history ends
at) and moves at that market's own volatility. Trades go to the ``trades`` stream and
are stored through the OHLCV loader, whose new-bar hook publishes the 1m bars: a bar on
the ``ohlcv`` stream is the bar REST serves. A ticker's ``volume`` is the real 24-hour
volume, the sum of the stored trades of the last 24 hours. Orders, balances, positions,
bot status and process heartbeats change every few rounds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import math
import random
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from fullon_gateway.ohlcv import store
from fullon_gateway.ohlcv.loader import OhlcvLoader, TradeIn
from fullon_gateway.ohlcv.seed import DEFAULT_SYMBOLS, HISTORY_TRADES_PER_MINUTE, SeedSymbol
from fullon_gateway.stream.publish import Publisher

log = logging.getLogger(__name__)

MARKETS: dict[tuple[str, str], SeedSymbol] = {(s.exchange, s.symbol): s for s in DEFAULT_SYMBOLS}
EXCHANGES: dict[str, tuple[str, ...]] = {}
for _ex, _sym in MARKETS:
    EXCHANGES[_ex] = (*EXCHANGES.get(_ex, ()), _sym)
PROCESSES = (("tick", "ticker-service"), ("ohlcv", "ohlcv-service"),
             ("account", "account-service"), ("bot", "bot-runner"))
# Live trades are smaller than the history's in proportion to how much more often they
# come, so the volume per hour (and the 24h volume) carries on at the history's level.
DAY_MS = 86_400_000


class Volume24h:
    """The traded volume of the last 24 hours, kept per minute."""

    def __init__(self, minutes: list[tuple[int, float]] | None = None) -> None:
        self.minutes: collections.deque[tuple[int, float]] = collections.deque(minutes or [])
        self.total = sum(v for _, v in self.minutes)

    def add(self, minute_ms: int, volume: float) -> None:
        if self.minutes and self.minutes[-1][0] == minute_ms:
            self.minutes[-1] = (minute_ms, self.minutes[-1][1] + volume)
        else:
            self.minutes.append((minute_ms, volume))
        self.total += volume

    def at(self, now_ms: int) -> float:
        while self.minutes and self.minutes[0][0] <= now_ms - DAY_MS:
            self.total -= self.minutes.popleft()[1]
        return max(0.0, self.total)


async def market_state(pool: asyncpg.Pool) -> tuple[dict[tuple[str, str], float],
                                                     dict[tuple[str, str], Volume24h]]:
    """Per demo market: where its price is now (the last stored trade, else the price
    its seeded history ends at) and its stored volume of the last 24 hours."""
    prices, volumes = {}, {}
    for key, spec in MARKETS.items():
        prices[key], volumes[key] = spec.price, Volume24h()
        sid = await store.find_symbol(pool, *key)
        if sid is None:
            continue
        last = await pool.fetchval(
            "SELECT price FROM ohlcv_trades WHERE symbol_id = $1 ORDER BY ts DESC LIMIT 1", sid)
        if last is not None:
            prices[key] = float(last)
        rows = await pool.fetch(
            """SELECT ts, vol FROM ohlcv_candles_1m
               WHERE symbol_id = $1 AND ts > now() - interval '24 hours' ORDER BY ts""", sid)
        volumes[key] = Volume24h([(int(r["ts"].timestamp() * 1000), float(r["vol"]))
                                  for r in rows])
    return prices, volumes


class MarketSimulator:
    """A random walk per market at each market's own volatility; everything else
    follows from it. Trades are stored through ``loader`` every ``flush_every`` steps
    (its new-bar hook publishes the 1m bars); without a loader no bars are made."""

    def __init__(self, publisher: Publisher, seeded: dict[str, Any],
                 loader: OhlcvLoader | None = None,
                 state: tuple[dict[tuple[str, str], float],
                              dict[tuple[str, str], Volume24h]] | None = None,
                 seed: int | None = None, rate: float = 4.0, flush_every: int = 4,
                 trade_chance: float = 0.5) -> None:
        self.pub = publisher
        self.seeded = seeded
        self.loader = loader
        self.rng = random.Random(seed)  # simulation, not security
        self.interval = 1.0 / rate
        self.flush_every = flush_every
        self.trade_chance = trade_chance
        prices, volumes = state or ({}, {})
        self.prices = {key: prices.get(key, spec.price) for key, spec in MARKETS.items()}
        self.volumes = {key: volumes.get(key, Volume24h()) for key in MARKETS}
        self.pending: dict[tuple[str, str], list[TradeIn]] = {key: [] for key in MARKETS}
        self.refresh_from: asyncpg.Pool | None = None
        self.session = int(time.time() * 1000)
        self.trade_no = 0
        self.order_no = 0
        self.open_orders: list[tuple[int, dict[str, Any]]] = []
        self.db = loader.pool if loader is not None else None
        self.log_lines = 0
        self.tick_no = 0

    def refresh_volumes(self, pool: asyncpg.Pool) -> None:
        """Re-read the 24h volumes from the store at the next step (after a history load)."""
        self.refresh_from = pool

    async def step(self) -> None:
        """One round: every market ticks, and trades now and then; private streams change
        every few rounds; pending trades are stored every ``flush_every`` rounds."""
        if self.refresh_from is not None:
            pool, self.refresh_from = self.refresh_from, None
            self.volumes = (await market_state(pool))[1]
        now_ms = int(time.time() * 1000)
        self.tick_no += 1
        for key, spec in MARKETS.items():
            await self._tick(key, spec, now_ms)
        if self.tick_no % self.flush_every == 0:
            await self.flush()
        if self.tick_no % 4 == 0:
            await self._orders()
        if self.tick_no % 8 == 0:
            await self._accounts()
            await self._bots()
        if self.tick_no % 20 == 1:
            for ptype, pid in PROCESSES:
                await self.pub.process(ptype, pid, "running", "ok", round=self.tick_no)

    async def _tick(self, key: tuple[str, str], spec: SeedSymbol, now_ms: int) -> None:
        exchange, symbol = key
        step_vol = spec.daily_vol * math.sqrt(self.interval / 86400)
        price = max(spec.tick, self.prices[key] * math.exp(self.rng.gauss(0, step_vol)))
        self.prices[key] = price
        spread = max(spec.tick, price * 0.0001)
        await self.pub.ticker(exchange, symbol, {
            "price": round(price, 2), "bid": round(price - spread, 2),
            "ask": round(price + spread, 2), "last": round(price, 2),
            "volume": round(self.volumes[key].at(now_ms), 8), "time": now_ms})
        if self.rng.random() >= self.trade_chance:
            return
        live_per_minute = self.trade_chance * 60 / self.interval
        size = spec.mean_size * HISTORY_TRADES_PER_MINUTE / live_per_minute
        volume = round(size * self.rng.lognormvariate(0, 1) / math.exp(0.5), 8) or 1e-8
        side = self.rng.choice(("buy", "sell"))
        self.trade_no += 1
        trade_id = f"live-{self.session}-{self.trade_no}"
        await self.pub.trade(exchange, symbol, {
            "timestamp": now_ms, "price": round(price, 2), "volume": volume,
            "side": side, "type": "market", "trade_id": trade_id})
        when = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC)
        self.pending[key].append(TradeIn(trade_id, when, round(price, 2), volume, side,
                                         "market"))

    async def flush(self) -> None:
        """Store the pending trades (the loader then publishes their 1m bars)."""
        for key, trades in self.pending.items():
            if not trades or self.loader is None:
                trades.clear()
                continue
            batch, self.pending[key] = trades, []
            try:
                await self.loader.load(*key, batch)
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("demo: storing %d trades of %s %s failed (dropped): %r",
                            len(batch), *key, exc)
                continue
            for trade in batch:
                minute = int(trade.ts.timestamp() * 1000) // 60_000 * 60_000
                self.volumes[key].add(minute, trade.volume)

    async def _orders(self) -> None:
        """Open an order, or close the oldest (filled or canceled). A status change
        publishes the whole order, as fullon's update_order keeps every field; each
        event is also a line in the bot's log."""
        ex_ids, bot_ids = self.seeded["ex_ids"], self.seeded["bot_ids"]
        if self.open_orders and self.rng.random() < 0.5:
            ex_id, order = self.open_orders.pop(0)
            status = self.rng.choice(("filled", "filled", "canceled"))
            closed = {**order, "status": status,
                      "final_volume": order["volume"] if status == "filled" else 0.0}
            await self.pub.order(ex_id, closed)
            await self._bot_log(order["bot_id"], f"{status} {order['side']} "
                                f"{order['volume']} {order['symbol']} at {order['price']}")
            return
        exchange = self.rng.choice(list(ex_ids))
        symbol = self.rng.choice(EXCHANGES[exchange])
        self.order_no += 1
        price = self.prices[(exchange, symbol)]
        order = {
            "order_id": f"demo-{self.session}-{self.order_no}", "symbol": symbol,
            "side": self.rng.choice(("buy", "sell")),
            "price": round(price * (1 + self.rng.uniform(-0.002, 0.002)), 2),
            "volume": round(self.rng.uniform(0.01, 0.5), 4), "status": "open",
            "bot_id": self.rng.choice(bot_ids)}
        await self.pub.order(ex_ids[exchange], order)
        self.open_orders.append((ex_ids[exchange], order))
        await self._bot_log(order["bot_id"], f"placed {order['side']} {order['volume']} "
                            f"{symbol} at {order['price']} on {exchange}")

    async def _bot_log(self, bot_id: int, message: str) -> None:
        """A line in bot_logs (what /bots/{id}/last-log shows); the newest 100 per bot
        are kept."""
        if self.db is None:
            return
        await self.db.execute("INSERT INTO bot_logs (bot_id, message) VALUES ($1, $2)",
                              bot_id, message)
        self.log_lines += 1
        if self.log_lines % 100 == 0:
            await self.db.execute(
                """DELETE FROM bot_logs WHERE bot_id = $1 AND log_id < (
                       SELECT min(log_id) FROM (SELECT log_id FROM bot_logs
                       WHERE bot_id = $1 ORDER BY log_id DESC LIMIT 100) AS newest)""",
                bot_id)

    async def _accounts(self) -> None:
        for exchange, ex_id in self.seeded["ex_ids"].items():
            quote = "USDT" if exchange == "binance" else "USD"
            await self.pub.balances(ex_id, {
                quote: {"free": round(self.rng.uniform(9_000, 11_000), 2), "used": 0.0},
                "BTC": {"free": round(self.rng.uniform(0.4, 0.6), 5), "used": 0.0}})
            symbol = EXCHANGES[exchange][0]
            await self.pub.positions(ex_id, [{
                "symbol": symbol, "size": round(self.rng.uniform(-0.2, 0.2), 4),
                "entry_price": round(self.prices[(exchange, symbol)] * 0.99, 2)}])

    async def _bots(self) -> None:
        for bot_id in self.seeded["bot_ids"]:
            await self.pub.bot_status(bot_id, {
                "status": "running", "pnl": round(self.rng.gauss(0, 50), 2),
                "open_orders": sum(1 for _, o in self.open_orders if o["bot_id"] == bot_id)})

    async def run(self, stop_event: asyncio.Event) -> None:
        """Step at ``rate`` until ``stop_event`` is set, then store what is pending."""
        while not stop_event.is_set():
            started = time.monotonic()
            try:
                await self.step()
            except (aioredis.RedisError, asyncpg.PostgresError, OSError) as exc:
                log.warning("demo publish failed (will retry): %r", exc)
            # Pace the simulation; wake at once when asked to stop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(),
                                       max(0.0, self.interval - (time.monotonic() - started)))
        with contextlib.suppress(aioredis.RedisError, asyncpg.PostgresError, OSError):
            await self.flush()
