"""Baseline (c): the raw aiohttp fan-out ceiling for one send per message per socket.

    python scripts/bench/baseline_raw_fanout.py PORT REDIS_URL PREFIX [contract|gateway]

Speaks the subset of docs/contract.md section 7 the benchmark uses (baseline_wire.py), with no
auth, no conflation, no metrics: a subscribe on ``/api/v1/cache/ws`` gets the ack, a
snapshot and then every message published for it.

One shared Redis subscriber (redis-py ``PubSub.get_message``, the same reader the
gateway's hub uses) per process. Each message is decoded and encoded ONCE into the
frame every subscriber of its key gets (the request_id is the first subscriber's; the
benchmark client sends the same one everywhere), then appended to each socket's queue.
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

import baseline_wire as wire
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
    """One Redis channel: its subscribers by message key (None: all of them)."""

    def __init__(self, w: wire.Wanted, request_id: Any) -> None:
        self.w = w
        self.request_id = request_id
        self.by_key: dict[str | None, set[Sock]] = {}
        self.wants: dict[str | None, wire.Wanted] = {}
        self.ready = asyncio.get_running_loop().create_future()

    def on_message(self, data: bytes) -> None:
        key, seq, result = self.w.decode(data)
        if self.w.key is None:
            key = None
        socks = self.by_key.get(key)
        if not socks:
            return
        frame = wire.frame(self.wants[key], self.request_id, seq, result)  # once for all
        for sock in socks:
            sock.push(frame)

    def empty(self) -> bool:
        return not any(self.by_key.values())


class Fanout:
    def __init__(self, url: str, prefix: str, source: str) -> None:
        self.prefix = prefix
        self.source = source
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

    async def add(self, w: wire.Wanted, request_id: Any, sock: Sock) -> None:
        route = self.routes.get(w.channel)
        if route is None:
            route = self.routes[w.channel] = Route(w, request_id)
            async with self.lock:
                await self.pubsub.subscribe(w.channel)
        route.by_key.setdefault(w.key, set()).add(sock)
        route.wants.setdefault(w.key, w)
        await asyncio.wait_for(asyncio.shield(route.ready), 5)

    async def remove(self, w: wire.Wanted, sock: Sock) -> None:
        route = self.routes.get(w.channel)
        if route is None:
            return
        route.by_key.get(w.key, set()).discard(sock)
        if route.empty():
            del self.routes[w.channel]
            async with self.lock:
                await self.pubsub.unsubscribe(w.channel)


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    fanout: Fanout = request.app["fanout"]
    ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024)
    await ws.prepare(request)
    sock = Sock(ws)
    subscribed: list[wire.Wanted] = []
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            req = orjson.loads(msg.data)
            rid = req.get("request_id")
            try:
                if req.get("action") != "subscribe":
                    raise wire.BadRequest("subscribe only")
                w = wire.wanted(req.get("params") or {}, fanout.prefix, fanout.source)
            except wire.BadRequest as exc:
                sock.push(wire.refusal(rid, req.get("action"), str(exc)))
                continue
            await fanout.add(w, rid, sock)
            subscribed.append(w)
            snap = await wire.snapshot(w, fanout.redis, fanout.prefix, rid)
            sock.push(wire.ack(w, rid))
            sock.push(snap)
    finally:
        for w in subscribed:
            await fanout.remove(w, sock)
        sock.writer.cancel()
    return ws


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    port, url, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    source = sys.argv[4] if len(sys.argv) > 4 else "contract"
    app = web.Application()

    async def lifecycle(app: web.Application) -> Any:
        app["fanout"] = fanout = Fanout(url, prefix, source)
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
