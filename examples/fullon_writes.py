"""A fullon service, as far as Redis can tell: writes only what fullon_cache writes.

Every write below is one of fullon_cache's documented write methods, issued as the
same Redis commands in the same order with the same encoding (the gateway's test
helper tests/fullon/writer.py mirrors the same methods): set_ticker, push_trade,
update_ohlcv_bars, save_order_data, upsert_user_account, upsert_positions,
update_bot, register_process / update_process. Nothing goes through the gateway's
publisher, so this shows the gateway streaming an unmodified fullon platform.

It logs in to the gateway only to learn which exchange accounts and bots the user has
(REST), then writes to Redis directly for --duration seconds.

    python examples/fullon_writes.py --redis redis://127.0.0.1:6379/0 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import time
from typing import Any

import redis.asyncio as aioredis
from _client import ORM, base_parser, logged_in_api, run


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


async def set_ticker(r: aioredis.Redis, exchange: str, symbol: str, price: float) -> None:
    """TickCache.set_ticker: HSET tickers:{ex} {sym} -> SET ticker_time -> PUBLISH."""
    tick = {"symbol": symbol, "exchange": exchange, "price": price, "volume": 1.0,
            "time": time.time(), "bid": price - 0.5, "ask": price + 0.5, "last": price}
    text = json.dumps(tick)
    await r.hset(f"tickers:{exchange}", symbol, text)
    await r.set(f"ticker_time:{exchange}:{symbol}", str(tick["time"]))
    await r.publish(f"ticker_updates:{exchange}:{symbol}", text)


async def push_trade(r: aioredis.Redis, exchange: str, trade: dict[str, Any]) -> None:
    """TradesCache.push_trade: RPUSH trades:{ex}:{SYM without /} -> SET TRADE:STATUS."""
    await r.rpush(f"trades:{exchange}:{trade['symbol'].replace('/', '')}", json.dumps(trade))
    await r.set(f"TRADE:STATUS:{exchange}", _now())


async def update_ohlcv_bars(r: aioredis.Redis, symbol: str, tf: str, bars: list[Any]) -> None:
    """OHLCVCache.update_ohlcv_bars: RPUSH ohlcv:{symbol}:{tf} -> LTRIM -10000 -1."""
    await r.rpush(f"ohlcv:{symbol}:{tf}", *[json.dumps(b) for b in bars])
    await r.ltrim(f"ohlcv:{symbol}:{tf}", -10000, -1)


async def save_order_data(r: aioredis.Redis, ex_id: int, order: dict[str, Any]) -> None:
    """OrdersCache.save_order_data: HGET -> merge -> HSET order_status:{ex_id}."""
    key, oid = f"order_status:{ex_id}", str(order["order_id"])
    old = await r.hget(key, oid)
    merged = {**(json.loads(old) if old else {}), **order, "timestamp": _now(), "order_id": oid}
    await r.hset(key, oid, json.dumps(merged))


async def upsert_user_account(r: aioredis.Redis, ex_id: int, account: dict[str, Any]) -> None:
    """AccountCache.upsert_user_account: HSET accounts {ex_id} <account + date>."""
    await r.hset("accounts", str(ex_id), json.dumps({**account, "date": _now()}))


async def upsert_positions(r: aioredis.Redis, ex_id: int, symbol: str, volume: float,
                           price: float) -> None:
    """AccountCache.upsert_positions: HSET account_positions {ex_id} <keyed by symbol>."""
    value = {symbol: {"cost": volume * price, "volume": volume, "fee": 0.0, "count": 1,
                      "price": price, "timestamp": time.time()}, "timestamp": _now()}
    await r.hset("account_positions", str(ex_id), json.dumps(value))


async def update_bot(r: aioredis.Redis, bot_id: int, feeds: dict[str, Any]) -> None:
    """BotCache.update_bot: HSET bot_status {bot_id} <keyed by feed, each + timestamp>."""
    await r.hset("bot_status", str(bot_id), json.dumps(
        {k: {**v, "timestamp": _now()} for k, v in feeds.items()}))


async def register_process(r: aioredis.Redis, ptype: str, component: str) -> str:
    """ProcessCache.register_process: SETEX data -> HSET active -> HSET components."""
    pid, now = f"{ptype}:{component}:{time.time()}", _now()
    record = {"process_id": pid, "process_type": ptype, "component": component,
              "params": {}, "status": "starting", "message": f"Process {component} registered",
              "created_at": now, "updated_at": now, "heartbeat": now}
    await r.execute_command("SETEX", f"process:data:{pid}", 86400, json.dumps(record))
    await r.hset(f"process:active:{ptype}", pid, now)
    await r.hset("process:components", component, pid)
    return pid


async def update_process(r: aioredis.Redis, pid: str, status: str, message: str) -> None:
    """ProcessCache.update_process: GET -> SETEX 86400 -> HSET process:active:{type}."""
    record = json.loads(await r.get(f"process:data:{pid}"))
    now = _now()
    record.update({"status": status, "message": message, "updated_at": now, "heartbeat": now})
    await r.execute_command("SETEX", f"process:data:{pid}", 86400, json.dumps(record))
    await r.hset(f"process:active:{record['process_type']}", pid, now)


async def owned_ids(args: argparse.Namespace) -> tuple[list[int], list[int]]:
    async with logged_in_api(args.url, args.email, args.password) as api:
        accounts = await api.call("GET", f"{ORM}/exchanges/user-exchanges")
        bots = await api.call("GET", f"{ORM}/bots")
    return [a["ex_id"] for a in accounts["items"]], [b["bot_id"] for b in bots["items"]]


async def main(args: argparse.Namespace) -> None:
    ex_ids, bot_ids = await owned_ids(args)
    print(f"ok    the user owns exchange accounts {ex_ids} and bots {bot_ids}")
    r = aioredis.Redis.from_url(args.redis)
    rng = random.Random(7)  # simulation, not security
    price, sym, ex = 65_000.0, args.symbol, args.exchange
    try:
        pid = await register_process(r, "tick", f"{ex}:{sym}")
        end = time.monotonic() + args.duration
        n = 0
        while time.monotonic() < end:
            n += 1
            price *= 1 + rng.gauss(0, 0.0005)
            await set_ticker(r, ex, sym, round(price, 2))
            await push_trade(r, ex, {"trade_id": n, "ex_trade_id": f"t{n}", "symbol": sym,
                                     "side": rng.choice(["buy", "sell"]), "volume": 0.01,
                                     "price": round(price, 2), "cost": round(price * 0.01, 2),
                                     "fee": 0.0, "time": _now()})
            minute = int(time.time() // 60 * 60)
            await update_ohlcv_bars(r, sym, "1m", [[minute * 1000 + n, price, price, price,
                                                    price, 0.01 * n]])
            for ex_id in ex_ids:
                await save_order_data(r, ex_id, {"order_id": f"o{ex_id}-{n}", "ex_id": ex_id,
                                                 "symbol": sym, "side": "buy", "volume": 0.01,
                                                 "price": round(price, 2), "status": "open"})
                await upsert_user_account(r, ex_id, {"USD": {"total": 10_000.0 + n,
                                                             "free": 9_000.0, "used": 1_000.0}})
                await upsert_positions(r, ex_id, sym, round(0.01 * n, 4), round(price, 2))
            for bot_id in bot_ids:
                await update_bot(r, bot_id, {"0": {"status": "running", "roi": n}})
            await update_process(r, pid, "running", f"round {n}")
            await asyncio.sleep(1 / args.rate)  # a service's own pace
        print(f"ok    wrote {n} rounds of fullon_cache writes")
    finally:
        await r.aclose()


def parse() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0], email="demo@example.com",
                         password="demo-password")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=4.0, help="rounds per second")
    parser.add_argument("--exchange", default="kraken")
    parser.add_argument("--symbol", default="BTC/USD")
    return parser.parse_args()


if __name__ == "__main__":
    run(main, parse())
