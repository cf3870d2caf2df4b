"""Live streams over one authenticated WebSocket (the fullon cache proxy, done right).

Logs in for a JWT, opens ws://HOST/api/v1/cache/ws/<stream>/<connection_id>?token=...
(or /api/v1/cache/ws for --stream all), subscribes, and prints what arrives for
--duration seconds: first the snapshot, then every change with its seq. It also shows
what an unauthenticated client gets: a close with code 1008 and the reason.

Exits non-zero when a step fails or a stream delivers nothing but its snapshot
(start `python -m fullon_gateway demo` to have live data on every stream).

    python examples/example_cache_websocket.py --stream tickers --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

import aiohttp
from _client import base_parser, check, login, run, ws_url

STREAMS = ("tickers", "orders", "trades", "accounts", "bots", "ohlcv", "process")


def subscribe_params(stream: str, exchange: str, symbol: str) -> dict[str, Any]:
    """The filters each stream needs; private streams default to 'all my accounts/bots'."""
    return {
        "tickers": {"stream": "tickers", "exchange": exchange, "symbols": "*"},
        "trades": {"stream": "trades", "exchange": exchange, "symbol": symbol},
        "ohlcv": {"stream": "ohlcv", "exchange": exchange, "symbol": symbol,
                  "timeframe": "1m"},
        "orders": {"stream": "orders"},
        "accounts": {"stream": "accounts"},
        "bots": {"stream": "bots"},
        "process": {"stream": "process"},
    }[stream]


async def show_auth_failure(session: aiohttp.ClientSession, base: str) -> None:
    """A socket with a bad token is closed with 1008 and a reason, never served."""
    async with session.ws_connect(ws_url(base, "/api/v1/cache/ws"),
                                  params={"token": "not-a-token"}) as ws:
        msg = await ws.receive(timeout=10)
        check(msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
              and ws.close_code == 1008,
              f"bad token closed with 1008 ({msg.extra!r})", (msg.type, ws.close_code))


async def watch(session: aiohttp.ClientSession, base: str, token: str, streams: list[str],
                duration: float, exchange: str, symbol: str) -> dict[str, int]:
    path = ("/api/v1/cache/ws" if len(streams) > 1
            else f"/api/v1/cache/ws/{streams[0]}/{uuid.uuid4().hex[:8]}")
    live = dict.fromkeys(streams, 0)
    async with session.ws_connect(ws_url(base, path), params={"token": token},
                                  heartbeat=15) as ws:
        for i, stream in enumerate(streams):
            await ws.send_json({"action": "subscribe", "request_id": f"sub-{i}",
                                "params": subscribe_params(stream, exchange, symbol)})
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        while (left := end - loop.time()) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type != aiohttp.WSMsgType.TEXT:
                check(False, "socket stayed open", (msg.type, ws.close_code, msg.extra))
            frame = json.loads(msg.data)
            if "success" in frame:
                check(frame["success"], f"{frame['action']} {frame.get('request_id')}",
                      frame.get("error"))
                continue
            stream = frame["action"].removesuffix("_update")
            if frame.get("snapshot"):
                print(f"      {stream} snapshot seq={frame['seq']}: "
                      f"{json.dumps(frame['result'])[:100]}")
            else:
                live[stream] = live.get(stream, 0) + 1
                print(f"      {stream} seq={frame['seq']}: {json.dumps(frame['result'])[:100]}")
    return live


async def main(args: argparse.Namespace) -> None:
    base = args.url.rstrip("/")
    async with aiohttp.ClientSession() as session:
        await show_auth_failure(session, base)
        body = await login(session, base, args.email, args.password, what="log in for a JWT")
        streams = list(STREAMS) if args.stream == "all" else [args.stream]
        if args.stream == "all" and body["user"]["role"] != "admin":
            streams.remove("process")  # admin only
        live = await watch(session, base, body["access_token"], streams, args.duration,
                           args.exchange, args.symbol)
        for stream, count in live.items():
            check(count > 0, f"{stream} delivered {count} live updates")


def parse() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0], email="demo@example.com",
                         password="demo-password")
    parser.add_argument("--stream", choices=[*STREAMS, "all"], default="tickers")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--exchange", default="kraken")
    parser.add_argument("--symbol", default="BTC/USD")
    return parser.parse_args()


if __name__ == "__main__":
    run(main, parse())
