"""fullon_cache_api's clients on the per-stream paths: its actions, params, shapes."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from tests.fullon.writer import FullonWriter
from tests.stream.support import connect, make_bot, make_exchange, recv


async def call(ws: Any, action: str, params: dict[str, Any] | None = None,
               rid: Any = "r") -> dict[str, Any]:
    await ws.send_json({"action": action, "request_id": rid, "params": params or {}})
    while True:
        frame = await recv(ws)
        if frame.get("request_id") == rid and "success" in frame:
            return frame


async def push(ws: Any, name: str) -> dict[str, Any]:
    while True:
        frame = await recv(ws)
        if frame.get("action") == name and "success" not in frame:
            return frame


async def test_tickers_path(fclient: Any, faccount: Any, writer: FullonWriter) -> None:
    """get_ticker / get_all_tickers / stream_tickers answer in fullon_cache_api's shapes;
    a missing ticker is TICKER_NOT_FOUND naming the action; missing params are
    INVALID_PARAMS without it; pushes are ticker_update with the stream_key."""
    user = await faccount()
    await writer.set_ticker("kraken", "BTC/USD", 10.0, bid=None)
    ws = await connect(fclient, user.token, path="/api/v1/cache/ws/tickers/c1")
    reply = await call(ws, "get_ticker", {"exchange": "kraken", "symbol": "BTC/USD"})
    assert reply["action"] == "get_ticker" and reply["success"] is True
    assert set(reply["result"]) == {"symbol", "exchange", "price", "volume", "timestamp",
                                    "bid", "ask", "change_24h"}
    assert reply["result"]["price"] == 10.0 and reply["result"]["bid"] is None
    assert reply["result"]["change_24h"] == 0.0
    reply = await call(ws, "get_ticker", {"exchange": "kraken", "symbol": "ETH/USD"})
    assert reply == {"request_id": "r", "action": "get_ticker", "success": False,
                     "error_code": "TICKER_NOT_FOUND",
                     "error": "Ticker ETH/USD not found for kraken"}
    reply = await call(ws, "get_ticker", {"exchange": "kraken"})
    assert reply == {"request_id": "r", "success": False, "error_code": "INVALID_PARAMS",
                     "error": "exchange and symbol parameters required"}
    reply = await call(ws, "get_all_tickers", {"exchange": "kraken"})
    assert [t["symbol"] for t in reply["result"]["tickers"]] == ["BTC/USD"]
    ack = await call(ws, "stream_tickers", {"exchange": "kraken", "symbols": ["BTC/USD"]},
                     rid="s1")
    assert ack == {"request_id": "s1", "action": "stream_tickers", "success": True,
                   "message": "Streaming started for 1 symbols on kraken",
                   "stream_key": "c1:s1"}
    first = await push(ws, "ticker_update")  # the current value first
    assert first["request_id"] == "s1" and first["result"]["stream_key"] == "c1:s1"
    await writer.set_ticker("kraken", "BTC/USD", 11.0)
    frame = await push(ws, "ticker_update")
    assert frame["result"]["price"] == 11.0 and "success" not in frame
    reply = await call(ws, "nope")
    assert reply["error_code"] == "INVALID_OPERATION"
    await ws.close()


async def test_accounts_path_checks_ownership(fclient: Any, faccount: Any,
                                              writer: FullonWriter) -> None:
    """get_balance reads accounts[user_id] (fullon_cache_api's meaning) with free as the
    available balance; another user's account is BALANCE_NOT_FOUND, never shown;
    stream_positions pushes one position_update per position."""
    owner, other = await faccount(), await faccount()
    ex_id = await make_exchange(fclient, owner.user_id)
    await writer.upsert_user_account(ex_id, {"USD": {"total": 100.0, "free": 60.0,
                                                     "used": 40.0}})
    await writer.upsert_positions(ex_id, [{"symbol": "BTC/USD", "volume": -0.5,
                                           "price": 50.0}])
    ws = await connect(fclient, owner.token, path="/api/v1/cache/ws/accounts/a")
    reply = await call(ws, "get_balance", {"user_id": ex_id, "currency": "USD"})
    result = reply["result"]
    assert (result["total_balance"], result["available_balance"],
            result["reserved_balance"]) == (100.0, 60.0, 40.0)
    reply = await call(ws, "get_positions", {"exchange": ex_id})
    assert reply["result"]["count"] == 1
    assert reply["result"]["positions"][0]["side"] == "short"
    assert reply["result"]["positions"][0]["size"] == 0.5
    await call(ws, "stream_positions", {"exchange": ex_id}, rid="p")
    first = await push(ws, "position_update")
    assert first["result"]["symbol"] == "BTC/USD"
    await writer.upsert_positions(ex_id, [{"symbol": "ETH/USD", "volume": 2.0}])
    frame = await push(ws, "position_update")
    assert frame["result"]["symbol"] == "ETH/USD" and frame["result"]["side"] == "long"
    await ws.close()
    ws = await connect(fclient, other.token, path="/api/v1/cache/ws/accounts/a")
    reply = await call(ws, "get_balance", {"user_id": ex_id, "currency": "USD"})
    assert reply["error_code"] == "BALANCE_NOT_FOUND"
    reply = await call(ws, "stream_positions", {"exchange": ex_id})
    assert reply["success"] is False and reply["error_code"] == "NOT_FOUND"
    await ws.close()


async def test_trades_path_never_drains_the_queue(fclient: Any, faccount: Any,
                                                  writer: FullonWriter,
                                                  fredis: aioredis.Redis) -> None:
    """The old get_trades drained trades:{ex}:{SYM}; here it answers from what the
    gateway sequenced and the queue keeps its length; stream_trade_updates pushes
    trade_update with an epoch timestamp."""
    user = await faccount()
    ws = await connect(fclient, user.token, path="/api/v1/cache/ws/trades/t")
    await call(ws, "stream_trade_updates", {"exchange": "kraken", "symbol": "BTC/USD"},
               rid="s")
    await writer.push_trade("kraken", {"trade_id": 1, "symbol": "BTC/USD", "side": "buy",
                                       "price": 5.0, "volume": 1.0,
                                       "time": "2025-01-01T00:00:00+00:00"})
    frame = await push(ws, "trade_update")
    assert frame["result"]["trade_id"] == 1 and frame["result"]["timestamp"] == 1735689600.0
    reply = await call(ws, "get_trades", {"exchange": "kraken", "symbol": "BTC/USD"})
    assert [t["trade_id"] for t in reply["result"]["trades"]] == [1]
    assert await fredis.llen("trades:kraken:BTCUSD") == 1
    await ws.close()


async def test_orders_bots_ohlcv_process_paths(fclient: Any, faccount: Any,
                                               writer: FullonWriter,
                                               fredis: aioredis.Redis) -> None:
    """The remaining paths: order status and queue length (pushed on change), bot status
    (bot_update carries every subscribed bot), is_blocked, OHLCV bars as stored, and
    the admin-only process actions (FORBIDDEN for a user)."""
    admin, user = await faccount("admin"), await faccount()
    ex_id = await make_exchange(fclient, admin.user_id)
    bot_id = await make_bot(fclient, admin.user_id)
    await writer.save_order_data(ex_id, {"order_id": "o1", "symbol": "BTC/USD", "volume": 2.0,
                                         "final_volume": 0.5, "price": None,
                                         "status": "open"})
    ws = await connect(fclient, admin.token, path="/api/v1/cache/ws/orders/o")
    reply = await call(ws, "get_order_status", {"exchange": ex_id, "order_id": "o1"})
    assert (reply["result"]["amount"], reply["result"]["filled"],
            reply["result"]["remaining"], reply["result"]["price"]) == (2.0, 0.5, 1.5, None)
    reply = await call(ws, "get_order_status", {"exchange": ex_id, "order_id": "zz"})
    assert reply["error_code"] == "ORDER_NOT_FOUND" and reply["action"] == "get_order_status"
    assert (await call(ws, "get_queue_length", {"exchange": ex_id}))["result"][
        "queue_length"] == 1
    await call(ws, "stream_order_queue", {"exchange": ex_id}, rid="q")
    assert (await push(ws, "queue_update"))["result"]["queue_length"] == 1
    await writer.save_order_data(ex_id, {"order_id": "o2", "status": "open"})
    assert (await push(ws, "queue_update"))["result"]["queue_length"] == 2
    await ws.close()

    await writer.update_bot(bot_id, {"0": {"status": "running"}})
    await fredis.hset("block_exchange", f"{ex_id}:BTC/USD", str(bot_id))
    ws = await connect(fclient, admin.token, path="/api/v1/cache/ws/bots/b")
    reply = await call(ws, "get_bot_status", {"bot_id": bot_id})
    assert reply["result"]["status"] == "running" and reply["result"]["bot_id"] == str(bot_id)
    reply = await call(ws, "is_blocked", {"exchange": ex_id, "symbol": "BTC/USD"})
    assert reply["result"]["is_blocked"] is True and reply["result"]["blocked_by"] == str(bot_id)
    assert str(bot_id) in (await call(ws, "get_bots"))["result"]["bots"]
    await call(ws, "stream_bot_status", {"bot_id": bot_id}, rid="b")
    await writer.update_bot(bot_id, {"0": {"status": "stopped"}})
    frame = await push(ws, "bot_update")
    assert frame["result"]["bots"][str(bot_id)]["0"]["status"] == "stopped"
    await ws.close()

    await writer.update_ohlcv_bars("BTC/USD", "1m", [[60, 1, 2, 0.5, 1.5, 9]])
    ws = await connect(fclient, user.token, path="/api/v1/cache/ws/ohlcv/h")
    reply = await call(ws, "get_latest_ohlcv_bars", {"symbol": "BTC/USD", "timeframe": "1m"})
    assert reply["result"]["bars"] == [[60, 1, 2, 0.5, 1.5, 9]]
    await call(ws, "stream_ohlcv", {"symbol": "BTC/USD", "timeframe": "1m"}, rid="h")
    await writer.update_ohlcv_bars("BTC/USD", "1m", [[120, 1, 2, 0.5, 1.5, 9]])
    frame = await push(ws, "ohlcv_update")
    assert frame["result"]["bar"] == [120.0, 1.0, 2.0, 0.5, 1.5, 9.0]
    await ws.close()

    ws = await connect(fclient, user.token, path="/api/v1/cache/ws/process/p")
    assert (await call(ws, "get_system_health"))["error_code"] == "FORBIDDEN"
    await ws.close()
    pid = await writer.register_process("bot", "b1")
    ws = await connect(fclient, admin.token, path="/api/v1/cache/ws/process/p")
    health = (await call(ws, "get_system_health"))["result"]
    assert health["total_processes"] == 1 and health["by_type"] == {"bot": 1}
    procs = (await call(ws, "get_active_processes"))["result"]["processes"]
    assert procs[0]["process_id"] == pid and procs[0]["name"] == "b1"
    await call(ws, "stream_process_health", {}, rid="ph")
    assert (await push(ws, "process_health_update"))["result"]["active_processes"] == 1
    await writer.register_process("tick", "kraken:BTC/USD")
    assert (await push(ws, "process_health_update"))["result"]["active_processes"] == 2
    await ws.close()
    assert json.dumps(health)  # plain JSON, no NaN
