"""Baseline (b): one Redis pub/sub subscription per WebSocket (the old gateway's design,
minus its 0.5 s polling).

    python scripts/bench/baseline_per_socket.py PORT REDIS_URL PREFIX [contract|gateway]

Same wire subset as baseline_raw_fanout.py (baseline_wire.py, no auth): a subscribe on
``/api/v1/cache/ws`` gets the ack, a snapshot and then every message published for it.

Each socket opens its own Redis connection and SUBSCRIBEs its channel, and its own
task reads that connection and forwards every message: decode, build the frame,
encode, ``await ws.send_frame`` (with the gateway publisher's per-exchange ticker
channel, every socket also receives and skips the other symbols' messages). So Redis
sends each publish once per socket and the server decodes and encodes it once per
socket. The pool is sized for every socket (redis-py's asyncio pools otherwise stop at
100 connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

import baseline_wire as wire
import orjson
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

TEXT = WSMsgType.TEXT


async def forward(pubsub: Any, ws: web.WebSocketResponse, w: wire.Wanted,
                  request_id: Any) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if msg is None or msg["type"] != "message":
                continue
            key, seq, result = w.decode(msg["data"])  # decoded again for every socket
            if w.key is not None and key != w.key:
                continue  # per-exchange channel: this socket wants one symbol of it
            await ws.send_frame(wire.frame(w, request_id, seq, result), TEXT)


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    redis: aioredis.Redis = request.app["redis"]
    prefix: str = request.app["prefix"]
    source: str = request.app["source"]
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
            try:
                if req.get("action") != "subscribe":
                    raise wire.BadRequest("subscribe only")
                w = wire.wanted(req.get("params") or {}, prefix, source)
            except wire.BadRequest as exc:
                await ws.send_frame(wire.refusal(rid, req.get("action"), str(exc)), TEXT)
                continue
            pubsub = redis.pubsub()
            pubsubs.append(pubsub)
            await pubsub.subscribe(w.channel)
            # Wait for Redis to confirm, so the snapshot below misses nothing.
            while (await pubsub.get_message(timeout=5.0) or {}).get("type") != "subscribe":
                pass
            snap = await wire.snapshot(w, redis, prefix, rid)
            await ws.send_frame(wire.ack(w, rid), TEXT)
            await ws.send_frame(snap, TEXT)
            tasks.append(asyncio.create_task(forward(pubsub, ws, w, rid)))
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
    source = sys.argv[4] if len(sys.argv) > 4 else "contract"
    app = web.Application()

    async def lifecycle(app: web.Application) -> Any:
        pool = aioredis.ConnectionPool.from_url(url, max_connections=50_000)
        app["redis"] = aioredis.Redis(connection_pool=pool)
        app["prefix"] = prefix
        app["source"] = source
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
