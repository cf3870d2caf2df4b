"""Demo data and a market simulator, so every stream has something live to show.

``seed_demo(pool)`` creates (idempotently) a demo user, two exchange accounts and two
bots in the 001/002 tables. ``run_demo(settings, stop_event)`` seeds, then publishes
through ``fullon_gateway.stream.publish`` at a realistic pace until ``stop_event`` is set;
``attach_demo(app)`` does the same inside a serving app (``python -m fullon_gateway
demo``) and loads the trade history too.

One story: the markets are ``ohlcv.seed.DEFAULT_SYMBOLS``, each with history that ends
where its live price starts; live trades are stored, so REST candles and the ``ohlcv``
stream agree (``fullon_gateway/simulator.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from fullon_gateway.auth.passwords import Passwords
from fullon_gateway.keys import DATABASE, DB, OHLCV_LOADER, REDIS, SETTINGS
from fullon_gateway.ohlcv.loader import OhlcvLoader, symbol_id_for
from fullon_gateway.ohlcv.seed import HISTORY_TRADES_PER_MINUTE, seed_history
from fullon_gateway.settings import Settings, SettingsError
from fullon_gateway.simulator import EXCHANGES, MARKETS, MarketSimulator, market_state
from fullon_gateway.store.pool import create_pool
from fullon_gateway.stream.live_bars import bars_to_stream
from fullon_gateway.stream.publish import Publisher

log = logging.getLogger(__name__)

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a documented demo credential
BOTS = ("demo-trend", "demo-mean-revert")


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
        loader = OhlcvLoader(pool, bars_to_stream(publisher))
        simulator = MarketSimulator(publisher, seeded, loader, await market_state(pool))
        await simulator.run(stop_event)
        return seeded
    finally:
        await redis.aclose()
        await pool.close()


async def _seed_history(pool: asyncpg.Pool, days: float, end: dt.datetime,
                        simulator: MarketSimulator) -> None:
    try:
        loaded = await seed_history(pool, days=days, end=end,
                                    trades_per_minute=HISTORY_TRADES_PER_MINUTE)
    except (asyncpg.PostgresError, OSError):
        log.exception("demo: loading the trade history failed")
        return
    new = {k: v for k, v in loaded.items() if v}
    if not new:
        log.info("demo: trade history already loaded")
        return
    log.warning("demo: loaded %g days of trade history (%s)", days,
                ", ".join(f"{k}: {v} trades" for k, v in new.items()))
    simulator.refresh_volumes(pool)


def attach_demo(app: Any) -> None:
    """Run the demo inside a serving app (``python -m fullon_gateway demo``).

    Seeds through the app's pool and publishes through the app's Redis client from a
    background task that starts after the resources and stops before they close.
    """
    async def demo_ctx(app: Any) -> Any:
        settings = app[SETTINGS]
        if app[DATABASE].attached:
            raise SettingsError("demo seeds made-up users and bots, so it refuses to run in "
                                "front of a fullon database; use serve")
        seeded = await seed_demo(app[DB])
        log.warning("demo running: log in as %s / %s", DEMO_EMAIL, DEMO_PASSWORD)
        stop = asyncio.Event()
        publisher = Publisher(app[REDIS], settings.redis_prefix, settings.history_len)
        # Every demo market exists in the OHLCV store before the port opens: candles
        # answer 200 (not 404) at once, with live bars within a second.
        async with app[DB].acquire() as conn:
            for exchange, symbol in MARKETS:
                await symbol_id_for(conn, exchange, symbol)
        live_from = dt.datetime.now(dt.UTC)
        simulator = MarketSimulator(publisher, seeded, app[OHLCV_LOADER],
                                    await market_state(app[DB]))
        task = asyncio.create_task(simulator.run(stop), name="demo-simulator")
        # Trade history for the OHLCV endpoints and charts, ending where the live trades
        # start, loaded in the background so the server answers at once (skipped for
        # markets that already have it).
        history = asyncio.create_task(
            _seed_history(app[DB], settings.demo_history_days, live_from, simulator),
            name="demo-history")
        yield
        stop.set()
        history.cancel()
        for running in (task, history):
            with contextlib.suppress(asyncio.CancelledError):
                await running

    app.cleanup_ctx.append(demo_ctx)
