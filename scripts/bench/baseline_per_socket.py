"""Baseline (b): one Redis pub/sub subscription per WebSocket (the old gateway's design,
minus its 0.5 s polling).

    python scripts/bench/baseline_per_socket.py PORT REDIS_URL PREFIX

Same wire subset as baseline_raw_fanout.py (no auth): ``subscribe {stream: "tickers",
exchange, symbols: [S]}`` on ``/api/v1/cache/ws`` gets the ack, a snapshot and then
every Tick published on ``{prefix}ticker_updates:{exchange}:{S}``.

Each socket opens its own Redis connection and SUBSCRIBEs its channel, and its own
task reads that connection and forwards every message: decode, build the frame,
encode, ``await ws.send_frame``. So Redis sends each publish once per socket and the
gateway process decodes and encodes it once per socket. The pool is sized for every
socket (redis-py's asyncio pools otherwise stop at 100 connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

TEXT = WSMsgType.TEXT


async def forward(pubsub: Any, ws: web.WebSocketResponse, exchange: str, symbol: str,
                  request_id: Any) -> None:
    key = f"tickers:{exchange}:{symbol}"
    with contextlib.suppress(ConnectionError, RuntimeError):
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if msg is None or msg["type"] != "message":
                continue
            tick = orjson.loads(msg["data"])
            tick["exchange"] = exchange
            tick["symbol"] = symbol
            await ws.send_frame(orjson.dumps({
                "action": "tickers_update", "request_id": request_id, "stream_key": key,
                "seq": None, "result": tick}), TEXT)


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    redis: aioredis.Redis = request.app["redis"]
    prefix: str = request.app["prefix"]
    ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024)
    await ws.prepare(request)
    tasks: list[asyncio.Task[None]] = []
    pubsubs: list[Any] = []
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            req = orjson.loads(msg.data)
            rid = req.get("request_id")
            params = req.get("params") or {}
            exchange, symbol = params.get("exchange"), (params.get("symbols") or [None])[0]
            if req.get("action") != "subscribe" or not exchange or not symbol:
                await ws.send_frame(orjson.dumps({
                    "request_id": rid, "action": req.get("action"), "success": False,
                    "error_code": "INVALID_PARAMS", "error": "tickers subscribe only"}), TEXT)
                continue
            pubsub = redis.pubsub()
            pubsubs.append(pubsub)
            await pubsub.subscribe(f"{prefix}ticker_updates:{exchange}:{symbol}")
            # Wait for Redis to confirm, so the snapshot below misses nothing.
            while (await pubsub.get_message(timeout=5.0) or {}).get("type") != "subscribe":
                pass
            key = f"tickers:{exchange}:{symbol}"
            raw = await redis.hget(f"{prefix}tickers:{exchange}", symbol)
            await ws.send_frame(orjson.dumps({"request_id": rid, "action": "subscribe",
                                              "success": True,
                                              "result": {"stream_key": key}}), TEXT)
            await ws.send_frame(orjson.dumps({
                "action": "tickers_update", "request_id": rid, "stream_key": key, "seq": None,
                "snapshot": True, "result": {"exchange": exchange, "tickers":
                                             [orjson.loads(raw)] if raw else []}}), TEXT)
            tasks.append(asyncio.create_task(forward(pubsub, ws, exchange, symbol, rid)))
    finally:
        for task in tasks:
            task.cancel()
        for pubsub in pubsubs:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
    return ws


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    port, url, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    app = web.Application()

    async def lifecycle(app: web.Application) -> Any:
        pool = aioredis.ConnectionPool.from_url(url, max_connections=50_000)
        app["redis"] = aioredis.Redis(connection_pool=pool)
        app["prefix"] = prefix
        yield
        await app["redis"].aclose()
        await pool.disconnect()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/api/v1/cache/ws", handle_ws)
    app.router.add_get("/health/live", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                shutdown_timeout=1)


if __name__ == "__main__":
    main()
