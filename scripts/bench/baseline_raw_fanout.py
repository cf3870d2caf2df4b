"""Baseline (c): the raw aiohttp fan-out ceiling for one send per message per socket.

    python scripts/bench/baseline_raw_fanout.py PORT REDIS_URL PREFIX

Speaks the subset of API.md section 7 the benchmark uses, with no auth, no seq, no
conflation, no metrics: ``subscribe {stream: "tickers", exchange, symbols: [S]}`` on
``/api/v1/cache/ws`` gets the ack, a snapshot (HGET of ``{prefix}tickers:{exchange}``)
and then every Tick published on ``{prefix}ticker_updates:{exchange}:{S}``.

One shared Redis subscriber (redis-py ``PubSub.get_message``, the same reader the
gateway's hub uses) per process. Each message is decoded and encoded ONCE into the
frame every subscriber gets (the request_id is the first subscriber's; the benchmark
client sends the same one everywhere), then appended to each socket's queue.
Sends are never awaited socket by socket in series: every socket has its own
writer task draining a deque (the "per-socket queues / writer tasks" design, the same
shape as the gateway's), so a slow client delays only itself. A socket more than
``QUEUE_LIMIT`` frames behind drops the oldest (market-data style; counted as loss by
the benchmark).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

QUEUE_LIMIT = 10_000
TEXT = WSMsgType.TEXT


class Sock:
    __slots__ = ("queue", "wake", "writer", "ws")

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: collections.deque[bytes] = collections.deque()
        self.wake = asyncio.Event()
        self.writer = asyncio.create_task(self._write())

    def push(self, frame: bytes) -> None:
        q = self.queue
        q.append(frame)
        if len(q) > QUEUE_LIMIT:
            q.popleft()
        self.wake.set()

    async def _write(self) -> None:
        q, ws, wake = self.queue, self.ws, self.wake
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                if not q:
                    wake.clear()
                    await wake.wait()
                    continue
                await ws.send_frame(q.popleft(), TEXT)


class Route:
    """One Redis channel: its subscribers and the fixed parts of its frames."""

    def __init__(self, exchange: str, symbol: str, request_id: Any) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.socks: set[Sock] = set()
        self.ready = asyncio.get_running_loop().create_future()
        self.head = {"action": "tickers_update", "request_id": request_id,
                     "stream_key": f"tickers:{exchange}:{symbol}", "seq": None}

    def on_message(self, data: bytes) -> None:
        tick = orjson.loads(data)
        tick["exchange"] = self.exchange
        tick["symbol"] = self.symbol
        frame = orjson.dumps({**self.head, "result": tick})
        for sock in self.socks:
            sock.push(frame)


class Fanout:
    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.redis = aioredis.Redis.from_url(url)
        self.pubsub = self.redis.pubsub()
        self.routes: dict[str, Route] = {}
        self.reader: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()

    async def start(self) -> None:
        await self.pubsub.subscribe(self.prefix + "bench:control")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        routes = self.routes
        while True:
            msg = await self.pubsub.get_message(timeout=5.0)
            if msg is None:
                continue
            kind = msg["type"]
            if kind == "message":
                route = routes.get(msg["channel"].decode())
                if route is not None:
                    route.on_message(msg["data"])
            elif kind == "subscribe":
                route = routes.get(msg["channel"].decode())
                if route is not None and not route.ready.done():
                    route.ready.set_result(None)

    async def add(self, exchange: str, symbol: str, request_id: Any, sock: Sock) -> None:
        channel = f"{self.prefix}ticker_updates:{exchange}:{symbol}"
        route = self.routes.get(channel)
        if route is None:
            route = self.routes[channel] = Route(exchange, symbol, request_id)
            async with self.lock:
                await self.pubsub.subscribe(channel)
        route.socks.add(sock)
        await asyncio.wait_for(asyncio.shield(route.ready), 5)

    async def remove(self, exchange: str, symbol: str, sock: Sock) -> None:
        channel = f"{self.prefix}ticker_updates:{exchange}:{symbol}"
        route = self.routes.get(channel)
        if route is None:
            return
        route.socks.discard(sock)
        if not route.socks:
            del self.routes[channel]
            async with self.lock:
                await self.pubsub.unsubscribe(channel)


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    fanout: Fanout = request.app["fanout"]
    ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024)
    await ws.prepare(request)
    sock = Sock(ws)
    subscribed: list[tuple[str, str]] = []
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            req = orjson.loads(msg.data)
            rid = req.get("request_id")
            params = req.get("params") or {}
            exchange, symbol = params.get("exchange"), (params.get("symbols") or [None])[0]
            if req.get("action") != "subscribe" or not exchange or not symbol:
                sock.push(orjson.dumps({"request_id": rid, "action": req.get("action"),
                                        "success": False, "error_code": "INVALID_PARAMS",
                                        "error": "tickers subscribe only"}))
                continue
            await fanout.add(exchange, symbol, rid, sock)
            subscribed.append((exchange, symbol))
            key = f"tickers:{exchange}:{symbol}"
            raw = await fanout.redis.hget(f"{fanout.prefix}tickers:{exchange}", symbol)
            sock.push(orjson.dumps({"request_id": rid, "action": "subscribe", "success": True,
                                    "result": {"stream_key": key}}))
            sock.push(orjson.dumps({
                "action": "tickers_update", "request_id": rid, "stream_key": key, "seq": None,
                "snapshot": True, "result": {"exchange": exchange, "tickers":
                                             [orjson.loads(raw)] if raw else []}}))
    finally:
        for exchange, symbol in subscribed:
            await fanout.remove(exchange, symbol, sock)
        sock.writer.cancel()
    return ws


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    port, url, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    app = web.Application()

    async def lifecycle(app: web.Application) -> Any:
        app["fanout"] = fanout = Fanout(url, prefix)
        await fanout.start()
        yield
        if fanout.reader is not None:
            fanout.reader.cancel()
        await fanout.pubsub.aclose()
        await fanout.redis.aclose()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/api/v1/cache/ws", handle_ws)
    app.router.add_get("/health/live", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                shutdown_timeout=1)


if __name__ == "__main__":
    main()
