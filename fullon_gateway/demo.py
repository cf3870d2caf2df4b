"""Demo data and a market simulator, so every stream has something live to show.

``seed_demo(pool)`` creates (idempotently) a demo user, two exchange accounts and two
bots in the 001/002 tables. ``run_demo(settings, stop_event)`` seeds, then publishes
through ``fullon_gateway.publish`` at a realistic pace until ``stop_event`` is set:
tickers (~4/s per symbol), public trades, 1m OHLCV bars built from those trades,
order lifecycles, balances and positions, bot status and process heartbeats.
The CLI ``demo`` sub-command is wired by the lead (``python -m fullon_gateway demo``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from fullon_gateway.auth.passwords import Passwords
from fullon_gateway.publish import Publisher
from fullon_gateway.settings import Settings, SettingsError
from fullon_gateway.store.pool import create_pool

log = logging.getLogger(__name__)

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a documented demo credential
EXCHANGES = {"kraken": ("BTC/USD", "ETH/USD", "SOL/USD"), "binance": ("BTC/USDT", "ETH/USDT")}
START_PRICE = {"BTC": 65_000.0, "ETH": 3_400.0, "SOL": 150.0}
BOTS = ("demo-trend", "demo-mean-revert")
PROCESSES = (("tick", "ticker-service"), ("ohlcv", "ohlcv-service"),
             ("account", "account-service"), ("bot", "bot-runner"))


async def seed_demo(pool: asyncpg.Pool) -> dict[str, Any]:
    """Demo user, exchange accounts and bots; safe to run again (returns the same ids)."""
    async with pool.acquire() as conn, conn.transaction():
        user_id = await conn.fetchval("SELECT user_id FROM users WHERE lower(email) = $1",
                                      DEMO_EMAIL)
        if user_id is None:
            # Default argon2 cost: the demo user is as real as any other.
            password_hash = await Passwords(Settings()).hash(DEMO_PASSWORD)
            user_id = await conn.fetchval(
                """INSERT INTO users (email, name, password_hash, role)
                   VALUES ($1, 'Demo Trader', $2, 'user') RETURNING user_id""",
                DEMO_EMAIL, password_hash)
        ex_ids: dict[str, int] = {}
        for exchange in EXCHANGES:
            cat = await conn.fetchval(
                """INSERT INTO cat_exchanges (name) VALUES ($1)
                   ON CONFLICT (name) DO UPDATE SET name = excluded.name
                   RETURNING cat_ex_id""", exchange)
            ex_ids[exchange] = await conn.fetchval(
                """INSERT INTO exchanges (user_id, cat_ex_id, name, test) VALUES ($1, $2, $3, true)
                   ON CONFLICT (user_id, name) DO UPDATE SET updated_at = now()
                   RETURNING ex_id""", user_id, cat, f"demo-{exchange}")
        bot_ids = []
        for name in BOTS:
            bot_id = await conn.fetchval(
                "SELECT bot_id FROM bots WHERE user_id = $1 AND name = $2", user_id, name)
            if bot_id is None:
                bot_id = await conn.fetchval(
                    """INSERT INTO bots (user_id, name, dry_run, active)
                       VALUES ($1, $2, true, true) RETURNING bot_id""", user_id, name)
            bot_ids.append(bot_id)
    return {"user_id": user_id, "email": DEMO_EMAIL, "password": DEMO_PASSWORD,
            "ex_ids": ex_ids, "bot_ids": bot_ids}


class MarketSimulator:
    """A random walk per symbol; everything else follows from it."""

    def __init__(self, publisher: Publisher, seeded: dict[str, Any], seed: int | None = None,
                 rate: float = 4.0) -> None:
        self.pub = publisher
        self.seeded = seeded
        self.rng = random.Random(seed)  # simulation, not security
        self.interval = 1.0 / rate
        self.prices = {(ex, sym): START_PRICE[sym.split("/")[0]]
                       for ex, syms in EXCHANGES.items() for sym in syms}
        self.bars: dict[tuple[str, str], dict[str, Any]] = {}
        self.order_no = 0
        self.open_orders: list[tuple[int, str, str, int]] = []
        self.tick_no = 0

    async def step(self) -> None:
        """One round: every symbol ticks and trades; private streams change now and then."""
        now_ms = int(time.time() * 1000)
        self.tick_no += 1
        for (exchange, symbol), price in self.prices.items():
            price *= 1 + self.rng.gauss(0, 0.0006)
            self.prices[(exchange, symbol)] = price
            spread = price * 0.0001
            await self.pub.ticker(exchange, symbol, {
                "price": round(price, 2), "bid": round(price - spread, 2),
                "ask": round(price + spread, 2), "last": round(price, 2),
                "volume": round(self.rng.uniform(10, 1000), 3), "time": now_ms})
            volume = round(self.rng.expovariate(2.0), 5)
            side = self.rng.choice(("buy", "sell"))
            await self.pub.trade(exchange, symbol, {
                "timestamp": now_ms, "price": round(price, 2), "volume": volume,
                "side": side, "type": "market"})
            await self._bar(exchange, symbol, now_ms, price, volume)
        if self.tick_no % 4 == 0:
            await self._orders()
        if self.tick_no % 8 == 0:
            await self._accounts()
            await self._bots()
        if self.tick_no % 20 == 1:
            for ptype, pid in PROCESSES:
                await self.pub.process(ptype, pid, "running", "ok", round=self.tick_no)

    async def _bar(self, exchange: str, symbol: str, now_ms: int, price: float,
                   volume: float) -> None:
        start = now_ms - now_ms % 60_000
        bar = self.bars.get((exchange, symbol))
        if bar is None or bar["timestamp"] != start:
            bar = {"timestamp": start, "open": price, "high": price, "low": price,
                   "close": price, "vol": 0.0}
            self.bars[(exchange, symbol)] = bar
        bar["high"], bar["low"] = max(bar["high"], price), min(bar["low"], price)
        bar["close"], bar["vol"] = price, bar["vol"] + volume
        await self.pub.ohlcv(exchange, symbol, "1m",
                             {k: round(v, 5) if isinstance(v, float) else v
                              for k, v in bar.items()})

    async def _orders(self) -> None:
        ex_ids, bot_ids = self.seeded["ex_ids"], self.seeded["bot_ids"]
        if self.open_orders and self.rng.random() < 0.5:
            ex_id, order_id, symbol, bot_id = self.open_orders.pop(0)
            status = self.rng.choice(("filled", "filled", "canceled"))
            await self.pub.order(ex_id, {"order_id": order_id, "symbol": symbol,
                                         "status": status, "bot_id": bot_id})
            return
        exchange = self.rng.choice(list(ex_ids))
        symbol = self.rng.choice(EXCHANGES[exchange])
        self.order_no += 1
        order_id = f"demo-{self.order_no}"
        bot_id = self.rng.choice(bot_ids)
        price = self.prices[(exchange, symbol)]
        await self.pub.order(ex_ids[exchange], {
            "order_id": order_id, "symbol": symbol, "side": self.rng.choice(("buy", "sell")),
            "price": round(price * (1 + self.rng.uniform(-0.002, 0.002)), 2),
            "volume": round(self.rng.uniform(0.01, 0.5), 4), "status": "open",
            "bot_id": bot_id})
        self.open_orders.append((ex_ids[exchange], order_id, symbol, bot_id))

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
                "open_orders": sum(1 for o in self.open_orders if o[3] == bot_id)})

    async def run(self, stop_event: asyncio.Event) -> None:
        while not stop_event.is_set():
            started = time.monotonic()
            try:
                await self.step()
            except (aioredis.RedisError, OSError) as exc:
                log.warning("demo publish failed (will retry): %r", exc)
            # Pace the simulation; wake at once when asked to stop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(),
                                       max(0.0, self.interval - (time.monotonic() - started)))


async def run_demo(settings: Settings, stop_event: asyncio.Event) -> dict[str, Any]:
    """Seed the demo data, then publish live data until ``stop_event`` is set."""
    assert settings.database_url and settings.redis_url, "demo needs database and redis URLs"
    pool = await create_pool(settings.database_url, 1, 2)
    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        seeded = await seed_demo(pool)
        log.info("demo user %s / %s; accounts %s; bots %s", DEMO_EMAIL, DEMO_PASSWORD,
                 seeded["ex_ids"], seeded["bot_ids"])
        publisher = Publisher(redis, settings.redis_prefix, settings.history_len)
        await MarketSimulator(publisher, seeded).run(stop_event)
        return seeded
    finally:
        await redis.aclose()
        await pool.close()


async def _seed_history(pool: asyncpg.Pool, days: float) -> None:
    from fullon_gateway.ohlcv.seed import seed_history

    try:
        loaded = await seed_history(pool, days=days)
    except (asyncpg.PostgresError, OSError):
        log.exception("demo: loading the trade history failed")
        return
    log.warning("demo: trade history ready (%s)",
                ", ".join(f"{k}: {v} trades" for k, v in loaded.items()) or "already loaded")


def attach_demo(app: Any) -> None:
    """Run the demo inside a serving app (``python -m fullon_gateway demo``).

    Seeds through the app's pool and publishes through the app's Redis client from a
    background task that starts after the resources and stops before they close.
    """
    from fullon_gateway.keys import DATABASE, DB, REDIS, SETTINGS

    async def demo_ctx(app: Any) -> Any:
        settings = app[SETTINGS]
        if app[DATABASE].attached:
            raise SettingsError("demo seeds made-up users and bots, so it refuses to run in "
                                "front of a fullon database; use serve")
        seeded = await seed_demo(app[DB])
        log.warning("demo running: log in as %s / %s", DEMO_EMAIL, DEMO_PASSWORD)
        stop = asyncio.Event()
        publisher = Publisher(app[REDIS], settings.redis_prefix, settings.history_len)
        task = asyncio.create_task(MarketSimulator(publisher, seeded).run(stop),
                                   name="demo-simulator")
        # 30 days of trade history for the OHLCV endpoints and charts, loaded in the
        # background so the server answers at once (skipped when already loaded).
        history = asyncio.create_task(
            _seed_history(app[DB], settings.demo_history_days), name="demo-history"
        )
        yield
        stop.set()
        history.cancel()
        for running in (task, history):
            with contextlib.suppress(asyncio.CancelledError):
                await running

    app.cleanup_ctx.append(demo_ctx)
