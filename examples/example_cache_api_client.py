"""A fullon_cache_api client, unchanged but for the token: every per-stream path.

fullon_cache_api's clients open ws://HOST/api/v1/cache/ws/{stream}/{connection_id}
and send ``{"action", "request_id", "params"}`` with its own action names and
parameters; they wait for its reply shapes and push names (``ticker_update``,
``position_update``, ``bot_update``, ``trade_update``, ``queue_update``,
``ohlcv_update``, ``process_health_update``). This script does exactly that on each
path, with ``?token=`` added, and checks every reply and one push per stream.

Run it while fullon data is moving (``python examples/fullon_writes.py`` or
``python -m fullon_gateway demo``). Exits non-zero when a step fails.

    python examples/example_cache_api_client.py --email admin@example.com --password ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

import aiohttp
from _client import ORM, base_parser, check, logged_in_api, login, run, ws_url


class Path:
    """One per-stream socket speaking fullon_cache_api's envelope."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, connection_id: str) -> None:
        self.ws = ws
        self.connection_id = connection_id
        self.n = 0

    async def call(self, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.n += 1
        rid = f"{action}-{self.n}"
        await self.ws.send_json({"action": action, "request_id": rid, "params": params or {}})
        while True:
            frame = await self.recv()
            if frame.get("request_id") == rid and "success" in frame:
                return frame

    async def recv(self, timeout: float = 15) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.TEXT:
            check(False, "socket stayed open", (msg.type, self.ws.close_code, msg.extra))
        frame: dict[str, Any] = json.loads(msg.data)
        return frame

    async def push(self, name: str, stream_key: str, timeout: float = 15) -> dict[str, Any]:
        """The next push named ``name`` for ``stream_key``."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            frame = await self.recv(max(end - loop.time(), 0.01))
            if frame.get("action") == name and frame["result"].get("stream_key") == stream_key:
                return frame


def ok(reply: dict[str, Any], what: str, *fields: str) -> dict[str, Any]:
    check(reply.get("success") is True, what, reply.get("error"))
    result: dict[str, Any] = reply.get("result") or {}
    missing = [f for f in fields if f not in result]
    check(not missing, f"{what}: result has {', '.join(fields)}", missing)
    return result


async def stream(path: Path, action: str, params: dict[str, Any], push: str,
                 *fields: str) -> dict[str, Any]:
    reply = await path.call(action, params)
    check(reply.get("success") is True and "message" in reply, f"{action} acknowledged",
          reply.get("error"))
    check(reply["stream_key"] == f"{path.connection_id}:{reply['request_id']}",
          f"{action} stream_key is connection_id:request_id", reply["stream_key"])
    frame = await path.push(push, reply["stream_key"])
    missing = [f for f in fields if f not in frame["result"]]
    check(not missing, f"{push} arrived with {', '.join(fields)}", missing)
    return frame["result"]


async def run_paths(session: aiohttp.ClientSession, args: argparse.Namespace, token: str,
                    ex_id: int, bot_id: int, is_admin: bool) -> None:
    ex, sym = args.exchange, args.symbol
    paths = ["tickers", "accounts", "bots", "trades", "orders", "ohlcv"]
    if is_admin:
        paths.append("process")
    for name in paths:
        connection_id = uuid.uuid4().hex[:8]
        url = ws_url(args.url, f"/api/v1/cache/ws/{name}/{connection_id}")
        async with session.ws_connect(url, params={"token": token}) as ws:
            p = Path(ws, connection_id)
            print(f"--- /api/v1/cache/ws/{name}/{connection_id}")
            if name == "tickers":
                ok(await p.call("get_ticker", {"exchange": ex, "symbol": sym}), "get_ticker",
                   "symbol", "exchange", "price", "volume", "timestamp", "bid", "ask",
                   "change_24h")
                ok(await p.call("get_all_tickers", {"exchange": ex}), "get_all_tickers",
                   "exchange", "tickers")
                await stream(p, "stream_tickers", {"exchange": ex, "symbols": [sym]},
                             "ticker_update", "exchange", "symbol", "price", "timestamp")
            elif name == "accounts":
                ok(await p.call("get_balance", {"user_id": ex_id, "currency": "USD"}),
                   "get_balance", "total_balance", "available_balance", "reserved_balance")
                ok(await p.call("get_positions", {"exchange": ex_id}), "get_positions",
                   "positions", "count")
                await stream(p, "stream_positions", {"exchange": ex_id}, "position_update",
                             "symbol", "side", "size", "entry_price")
            elif name == "bots":
                ok(await p.call("get_bots"), "get_bots", "bots")
                ok(await p.call("get_bot_status", {"bot_id": bot_id}), "get_bot_status",
                   "bot_id", "status", "data")
                ok(await p.call("is_blocked", {"exchange": ex_id, "symbol": sym}),
                   "is_blocked", "is_blocked", "blocked_by")
                await stream(p, "stream_bot_status", {"bot_id": bot_id}, "bot_update",
                             "bots", "timestamp")
            elif name == "trades":
                ok(await p.call("get_trades", {"exchange": ex, "symbol": sym}), "get_trades",
                   "exchange", "symbol", "trades")
                await stream(p, "stream_trade_updates", {"exchange": ex, "symbol": sym},
                             "trade_update", "side", "volume", "price", "timestamp")
            elif name == "orders":
                result = ok(await p.call("get_queue_length", {"exchange": ex_id}),
                            "get_queue_length", "queue_length")
                check(result["queue_length"] > 0, "the account has orders", result)
                await stream(p, "stream_order_queue", {"exchange": ex_id}, "queue_update",
                             "exchange", "queue_length")
            elif name == "ohlcv":
                ok(await p.call("get_latest_ohlcv_bars", {"symbol": sym, "timeframe": "1m",
                                                          "count": 5}),
                   "get_latest_ohlcv_bars", "bars")
                await stream(p, "stream_ohlcv", {"symbol": sym, "timeframe": "1m"},
                             "ohlcv_update", "symbol", "timeframe", "bar")
            elif name == "process":
                ok(await p.call("get_system_health"), "get_system_health", "healthy",
                   "total_processes", "by_type", "by_status", "stale_processes")
                ok(await p.call("get_active_processes"), "get_active_processes", "processes")
                await stream(p, "stream_process_health", {}, "process_health_update",
                             "active_processes")
            reply = await p.call("no_such_action")
            check(reply.get("error_code") == "INVALID_OPERATION",
                  "an unknown action is INVALID_OPERATION", reply)


async def main(args: argparse.Namespace) -> None:
    async with logged_in_api(args.url, args.email, args.password) as api:
        accounts = (await api.call("GET", f"{ORM}/exchanges/user-exchanges"))["items"]
        bots = (await api.call("GET", f"{ORM}/bots"))["items"]
    check(accounts and bots, "the user has an exchange account and a bot",
          (len(accounts), len(bots)))
    async with aiohttp.ClientSession() as session:
        body = await login(session, args.url, args.email, args.password)
        await run_paths(session, args, body["access_token"], accounts[0]["ex_id"],
                        bots[0]["bot_id"], body["user"]["role"] == "admin")


def parse() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0], email="demo@example.com",
                         password="demo-password")
    parser.add_argument("--exchange", default="kraken")
    parser.add_argument("--symbol", default="BTC/USD")
    return parser.parse_args()


if __name__ == "__main__":
    run(main, parse())
