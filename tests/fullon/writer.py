"""Writes exactly as fullon_cache does: the same keys, commands, order and encoding.

FULLON_CACHE.md sections 2-4 are the source: raw redis-py, no prefix (fullon keys carry
none), one command per step (fullon uses no MULTI and no Lua), values encoded with the
stdlib ``json.dumps`` defaults (so NaN is the bare token ``NaN``). Nothing here imports
fullon_cache; each method names the fullon_cache method it mirrors.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import redis.asyncio as aioredis


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()  # fullon: +00:00, never Z


class FullonWriter:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.r = redis

    # TickCache ------------------------------------------------------------------------
    async def set_ticker(self, exchange: str, symbol: str, price: float,
                         **extra: Any) -> dict[str, Any]:
        """TickCache.set_ticker: HSET tickers:{ex} -> SET ticker_time -> PUBLISH."""
        tick = {"symbol": symbol, "exchange": exchange, "price": price,
                "volume": extra.pop("volume", 1.0), "time": extra.pop("time", time.time()),
                "bid": extra.pop("bid", price - 0.5), "ask": extra.pop("ask", price + 0.5),
                "last": price, **extra}
        text = json.dumps(tick)
        await self.r.hset(f"tickers:{exchange}", symbol, text)
        await self.r.set(f"ticker_time:{exchange}:{symbol}", str(tick["time"]))
        await self.r.publish(f"ticker_updates:{exchange}:{symbol}", text)
        return tick

    async def delete_ticker(self, exchange: str, symbol: str) -> None:
        """TickCache.delete_ticker: HDEL the field, DEL ticker_time (no publish)."""
        await self.r.hdel(f"tickers:{exchange}", symbol)
        await self.r.delete(f"ticker_time:{exchange}:{symbol}")

    # TradesCache ----------------------------------------------------------------------
    async def push_trade(self, exchange: str, trade: dict[str, Any]) -> None:
        """TradesCache.push_trade: RPUSH trades:{ex}:{SYM without /} -> SET TRADE:STATUS."""
        key = f"trades:{exchange}:{trade['symbol'].replace('/', '')}"
        await self.r.rpush(key, json.dumps(trade))
        await self.r.set(f"TRADE:STATUS:{exchange}", _now_iso())

    async def get_trades(self, exchange: str, symbol: str) -> list[dict[str, Any]]:
        """TradesCache.get_trades, the DESTRUCTIVE read fullon's consumers do:
        LRANGE 0 -1 then DEL (two commands)."""
        key = f"trades:{exchange}:{symbol.replace('/', '')}"
        items = await self.r.lrange(key, 0, -1)
        await self.r.delete(key)
        return [json.loads(i) for i in items]

    # OHLCVCache -----------------------------------------------------------------------
    async def update_ohlcv_bars(self, symbol: str, timeframe: str,
                                bars: list[list[float]]) -> None:
        """OHLCVCache.update_ohlcv_bars: RPUSH (bars with >= 6 items) -> LTRIM -10000 -1."""
        key = f"ohlcv:{symbol}:{timeframe}"
        good = [json.dumps(b) for b in bars if len(b) >= 6]
        if good:
            await self.r.rpush(key, *good)
        await self.r.ltrim(key, -10000, -1)

    # OrdersCache ----------------------------------------------------------------------
    async def save_order(self, exchange: str, order: dict[str, Any]) -> str:
        """OrdersCache.save_order: HSET order_status:{exchange name} {oid} -> EXPIRE 3600
        when the status is exactly 'canceled'."""
        oid = str(order.get("ex_order_id") or order["order_id"])
        data = {**order, "timestamp": _now_iso(), "order_id": oid}
        await self.r.hset(f"order_status:{exchange}", oid, json.dumps(data))
        if data.get("status") == "canceled":
            await self.r.expire(f"order_status:{exchange}", 3600)
        return oid

    async def save_order_data(self, ex_id: int, order: dict[str, Any]) -> str:
        """OrdersCache.save_order_data: HGET -> merge (non-null new values) -> HSET
        order_status:{ex_id} (-> EXPIRE 3600 when canceled)."""
        key = f"order_status:{ex_id}"
        oid = str(order.get("ex_order_id") or order["order_id"])
        old = await self.r.hget(key, oid)
        merged = json.loads(old) if old else {}
        merged.update({k: v for k, v in order.items() if v is not None})
        merged["timestamp"] = _now_iso()
        merged["order_id"] = oid
        await self.r.hset(key, oid, json.dumps(merged))
        if merged.get("status") == "canceled":
            await self.r.expire(key, 3600)
        return oid

    # AccountCache ---------------------------------------------------------------------
    async def upsert_positions(self, ex_id: int, positions: list[dict[str, Any]]) -> None:
        """AccountCache.upsert_positions: HSET account_positions {ex_id} <dict keyed by
        symbol + root timestamp>; an empty list HDELs."""
        if not positions:
            await self.r.hdel("account_positions", str(ex_id))
            return
        value: dict[str, Any] = {
            p["symbol"]: {"cost": p.get("cost", 0.0), "volume": p["volume"],
                          "fee": p.get("fee", 0.0), "count": p.get("count", 1),
                          "price": p.get("price", 0.0), "timestamp": time.time()}
            for p in positions}
        value["timestamp"] = _now_iso()
        await self.r.hset("account_positions", str(ex_id), json.dumps(value))

    async def upsert_user_account(self, ex_id: int, account: dict[str, Any]) -> None:
        """AccountCache.upsert_user_account: HSET accounts {ex_id} <account + date>."""
        account = {**account, "date": _now_iso()}
        await self.r.hset("accounts", str(ex_id), json.dumps(account))

    # BotCache -------------------------------------------------------------------------
    async def update_bot(self, bot_id: int, status: dict[str, Any]) -> None:
        """BotCache.update_bot: HSET bot_status {bot_id} <dict keyed by feed; every dict
        value gets timestamp = now>."""
        value = {k: ({**v, "timestamp": _now_iso()} if isinstance(v, dict) else v)
                 for k, v in status.items()}
        await self.r.hset("bot_status", str(bot_id), json.dumps(value))

    async def del_bot(self, bot_id: int) -> None:
        """BotCache.del_bot: HDEL bot_status {bot_id}."""
        await self.r.hdel("bot_status", str(bot_id))

    # ProcessCache (prefix "process") -------------------------------------------------
    async def register_process(self, process_type: str, component: str,
                               params: dict[str, Any] | None = None,
                               message: str | None = None) -> str:
        """ProcessCache.register_process: SETEX process:data:{pid} 86400 -> HSET
        process:active:{type} -> HSET process:components."""
        pid = f"{process_type}:{component}:{time.time()}"
        now = _now_iso()
        record = {"process_id": pid, "process_type": process_type, "component": component,
                  "params": params or {}, "status": "starting",
                  "message": message or f"Process {component} registered",
                  "created_at": now, "updated_at": now, "heartbeat": now}
        await self.r.execute_command("SETEX", f"process:data:{pid}", 86400, json.dumps(record))
        await self.r.hset(f"process:active:{process_type}", pid, now)
        await self.r.hset("process:components", component, pid)
        return pid

    async def update_process(self, pid: str, status: str, message: str = "") -> None:
        """ProcessCache.update_process: GET -> SETEX 86400 -> HSET process:active:{type}."""
        record = json.loads(await self.r.get(f"process:data:{pid}"))
        now = _now_iso()
        record.update({"status": status, "message": message or record["message"],
                       "updated_at": now, "heartbeat": now})
        await self.r.execute_command("SETEX", f"process:data:{pid}", 86400, json.dumps(record))
        await self.r.hset(f"process:active:{record['process_type']}", pid, now)

    async def stop_process(self, pid: str) -> None:
        """ProcessCache.stop_process: GET, GET, SETEX (status stopped) -> HSET active ->
        HDEL active -> HDEL components."""
        key = f"process:data:{pid}"
        await self.r.get(key)
        record = json.loads(await self.r.get(key))
        record.update({"status": "stopped", "updated_at": _now_iso()})
        await self.r.execute_command("SETEX", key, 86400, json.dumps(record))
        active = f"process:active:{record['process_type']}"
        await self.r.hset(active, pid, _now_iso())
        await self.r.hdel(active, pid)
        await self.r.hdel("process:components", record["component"])

    async def broadcast_message(self, process_type: str, message: str,
                                data: Any = None) -> None:
        """ProcessCache.broadcast_message: PUBLISH process:broadcast:{type}."""
        await self.r.publish(f"process:broadcast:{process_type}", json.dumps(
            {"message": message, "data": data, "timestamp": _now_iso()}))
