"""WebSocket endpoints for live streams, and the process registry (/api/v1/services).

``/api/v1/cache/ws`` carries every stream; ``/api/v1/cache/ws/{stream}/{connection_id}``
carries one (``connection_id`` is a label for logs only: two sockets with the same
label are two independent connections). The upgrade itself is public; the socket
authenticates with ``?token=`` (JWT or API key) or a first ``auth`` message, and a
refused credential closes it with 1008 and the reason.

This task reads; the connection's writer task sends (stream/connection.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

from fullon_gateway.auth.identity import Caller, optional_caller, public, requires
from fullon_gateway.auth.middleware import credential_of
from fullon_gateway.auth.service import AuthFailure, AuthService
from fullon_gateway.errors import NotFound, Unavailable
from fullon_gateway.fullon import cache_api
from fullon_gateway.fullon.cache_api import CacheApi
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import AUTH, METRICS, SETTINGS, SOCKETS, STREAMS
from fullon_gateway.settings import Settings
from fullon_gateway.stream import frames
from fullon_gateway.stream import protocol as P
from fullon_gateway.stream.connection import Connection
from fullon_gateway.stream.service import StreamService
from fullon_gateway.stream.streams import STREAMS as STREAM_NAMES
from fullon_gateway.stream.streams import AccessError, full_admin

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
STALE_AFTER = 300.0  # seconds without a heartbeat before a process counts as stale


class StreamsHandler:
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/cache/ws", self.ws_all),
            web.get("/api/v1/cache/ws/{stream}/{connection_id}", self.ws_stream),
            web.get("/api/v1/services", self.services),
        ]

    @public
    async def ws_all(self, request: web.Request) -> web.WebSocketResponse:
        """WebSocket carrying every stream (auth: ?token= or a first auth message)."""
        return await _Session(request, None, "").serve()

    @public
    async def ws_stream(self, request: web.Request) -> web.WebSocketResponse:
        """WebSocket for one stream; connection_id is only a label."""
        stream = request.match_info["stream"]
        if stream not in STREAM_NAMES:
            raise NotFound(f"no such stream: {stream!r}", code="stream_not_found")
        return await _Session(request, stream, request.match_info["connection_id"][:64]).serve()

    @requires("admin")
    async def services(self, request: web.Request) -> web.Response:
        """The platform's processes from the process registry, with heartbeat age."""
        try:
            procs = await process_list(request.app[STREAMS])
        except (aioredis.RedisError, OSError) as exc:
            raise Unavailable("redis is unreachable") from exc
        return json_response({"items": procs, "next_cursor": None})


async def process_list(service: StreamService, process_type: str | None = None) -> list[Any]:
    from fullon_gateway.stream.streams import Target

    target = Target("process", "process:*", ("process",), {"process_type": process_type})
    _g, snap = await service.read_snapshot(target)
    now = time.time()
    out = []
    for proc in snap["processes"]:
        age = None
        try:
            beat = dt.datetime.fromisoformat(str(proc.get("heartbeat")).replace("Z", "+00:00"))
            age = round(max(0.0, now - beat.timestamp()), 1)
        except ValueError:
            pass
        stale = age is None or age > STALE_AFTER
        out.append({**proc, "heartbeat_age_s": age, "stale": stale,
                    "status": "stale" if stale else proc.get("status", "unknown")})
    return out


class _Session:
    """One socket's reading side: auth, rate limit, dispatch."""

    def __init__(self, request: web.Request, stream: str | None, label: str) -> None:
        self.request = request
        self.app = request.app
        self.settings: Settings = request.app[SETTINGS]
        self.auth: AuthService = request.app[AUTH]
        self.service: StreamService = request.app[STREAMS]
        self.only_stream = stream
        self.label = label
        self._window = 0
        self._count = 0
        self.cache_api: CacheApi | None = None

    async def serve(self) -> web.WebSocketResponse:
        s = self.settings
        # No aiohttp heartbeat (it waits only half a period for the pong) and no
        # autoping (it hides pongs): StreamService.heartbeat_forever pings, and every
        # frame read here, pongs included, counts as activity.
        ws = web.WebSocketResponse(compress=s.ws_compress, max_msg_size=s.ws_max_frame,
                                   autoping=False)
        await ws.prepare(self.request)
        batch = self.request.query.get("batch", "") in ("1", "true")
        conn = Connection(ws, self.app[METRICS], s.ws_queue_limit, batch, self.label,
                          self.service.counters)
        conn.start()
        registered = False
        watcher: asyncio.Task[None] | None = None
        try:
            caller = await self._authenticate(conn)
            if caller is None:
                return ws
            if "read" not in caller.scopes:  # streams are reads; a trade-only key is not
                await conn.close_with(POLICY_VIOLATION, "insufficient scope")
                return ws
            conn.set_caller(caller)
            if self.only_stream is not None:  # fullon_cache_api's actions are served here
                self.cache_api = CacheApi(self.service, conn, self.label)
            self.app[SOCKETS].add(conn)
            self.service.connections.add(conn)
            self.app[METRICS].sockets_open.inc()
            registered = True
            watcher = asyncio.create_task(self._watch_expiry(conn))
            async for msg in ws:
                conn.last_seen = time.monotonic()
                if msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    pass  # activity is all a pong says
                elif msg.type == WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    conn.enqueue(frames.error(None, None, P.MALFORMED_MESSAGE,
                                              "binary frames are not supported"))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            if watcher is not None:
                watcher.cancel()
            if registered:
                self.app[SOCKETS].discard(conn)
                self.app[METRICS].sockets_open.dec()
            with contextlib.suppress(Exception):
                await self.service.drop_connection(conn)
            conn.closing = True
            await conn.stop_writer()
        return ws

    # -- auth ------------------------------------------------------------------------
    async def _authenticate(self, conn: Connection) -> Caller | None:
        """The caller from the header, ?token=, or the first message; None = closed."""
        caller = optional_caller(self.request)
        if caller is not None:
            conn.token = credential_of(self.request)
            return caller
        token = self.request.query.get("token")
        try:
            if token is not None:
                conn.token = token
                return await self.auth.authenticate(token)
            return await self._first_message(conn)
        except AuthFailure as exc:
            await conn.close_with(POLICY_VIOLATION, exc.reason)
            return None

    async def _first_message(self, conn: Connection) -> Caller | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ws_auth_timeout
        while True:
            try:
                msg = await conn.ws.receive(timeout=max(deadline - loop.time(), 0.001))
            except TimeoutError:
                raise AuthFailure("missing token") from None
            conn.last_seen = time.monotonic()
            if msg.type == WSMsgType.PING:  # autoping is off: answer it ourselves
                await conn.ws.pong(msg.data)
            elif msg.type != WSMsgType.PONG:
                break
        if msg.type != WSMsgType.TEXT:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                            WSMsgType.ERROR):
                return None
            raise AuthFailure("missing token")
        try:
            req = P.parse(msg.data)
        except P.ProtocolError:
            raise AuthFailure("missing token") from None
        if req.action != "auth":
            raise AuthFailure("missing token")
        token = req.params.get("token")
        if not isinstance(token, str):
            raise AuthFailure("missing token")
        caller = await self.auth.authenticate(token)
        conn.token = token
        conn.enqueue(frames.reply(req.request_id, "auth", _whoami(caller)))
        return caller

    async def _watch_expiry(self, conn: Connection) -> None:
        """Close with 1008 ``token expired`` unless a refresh moved the expiry on."""
        while True:
            caller = conn.caller
            if caller is None or caller.expires_at is None:
                return
            delay = caller.expires_at - time.time()
            if delay > 0:
                await asyncio.sleep(min(delay, 3600))
                continue
            await conn.close_with(POLICY_VIOLATION, "token expired")
            return

    # -- messages ----------------------------------------------------------------------
    def _rate_limited(self, conn: Connection) -> bool:
        now = int(time.monotonic())
        if now != self._window:
            self._window, self._count = now, 0
        self._count += 1
        limit = self.settings.ws_rate_limit
        if self._count > 2 * limit:
            conn.close_soon(POLICY_VIOLATION, "rate limit exceeded")
            return True
        return self._count > limit

    async def _on_text(self, conn: Connection, text: str) -> None:
        request_id: Any = None
        action_name: str | None = None
        try:
            if self._rate_limited(conn):
                raise P.ProtocolError(P.RATE_LIMITED,
                                      f"more than {self.settings.ws_rate_limit} messages/s")
            try:
                req = P.parse(text)
            except P.ProtocolError as exc:
                request_id = getattr(exc, "request_id", None)
                action_name = getattr(exc, "action", None)
                raise
            request_id, action_name = req.request_id, req.action
            if self.cache_api is not None and cache_api.handles(self.only_stream, req.action):
                await self.cache_api.handle(req.request_id, req.action, req.params)
                return
            action = P.ACTIONS.get(req.action)
            if action is None:
                raise P.ProtocolError(P.INVALID_OPERATION, f"unknown action {req.action!r}")
            if self.only_stream is not None and action.stream not in (None, self.only_stream):
                raise P.ProtocolError(P.INVALID_OPERATION,
                                      f"this socket carries the {self.only_stream} stream only")
            raw_params = req.params
            if self.only_stream is not None and req.action == "subscribe" and \
                    "stream" not in raw_params:
                # On a per-stream endpoint the stream is implied by the path.
                raw_params = {**raw_params, "stream": self.only_stream}
            params = P.load_params(action, raw_params)
            await self._dispatch(conn, action, req, params)
        except (P.ProtocolError, AccessError) as exc:
            conn.enqueue(frames.error(request_id, action_name, exc.code, exc.message))
        except (aioredis.RedisError, OSError) as exc:
            log.warning("stream request failed: %r", exc)
            conn.enqueue(frames.error(request_id, action_name, P.INTERNAL_ERROR,
                                      "live data store unavailable, try again"))
        except Exception:
            log.exception("stream request failed")
            conn.enqueue(frames.error(request_id, action_name, P.INTERNAL_ERROR,
                                      "internal error"))

    async def _dispatch(self, conn: Connection, action: P.Action, req: P.Request,
                        params: dict[str, Any]) -> None:
        rid, name = req.request_id, req.action
        assert conn.caller is not None
        if name == "ping":
            conn.enqueue(frames.reply(rid, name, "pong"))
        elif name in ("auth", "refresh"):
            try:
                caller = await self.auth.authenticate(params["token"])
            except AuthFailure as exc:
                raise P.ProtocolError(P.FORBIDDEN, exc.reason) from None
            if caller.user_id != conn.caller.user_id:
                raise P.ProtocolError(P.FORBIDDEN, "the token belongs to another user")
            if "read" not in caller.scopes:  # the same rule as at connect
                raise P.ProtocolError(P.FORBIDDEN, "insufficient scope")
            conn.set_caller(caller, params["token"])
            conn.enqueue(frames.reply(rid, name, _whoami(caller)))
        elif name == "unsubscribe":
            if not await self.service.unsubscribe(conn, params["stream_key"]):
                raise P.ProtocolError(P.NOT_FOUND, "no such subscription on this socket")
            conn.enqueue(frames.reply(rid, name, {"stream_key": params["stream_key"]}))
        elif action.kind == "subscribe":
            stream = params.pop("stream")
            if self.only_stream is not None and stream != self.only_stream:
                raise P.ProtocolError(P.INVALID_OPERATION,
                                      f"this socket carries the {self.only_stream} stream only")
            await self.service.subscribe(conn, stream, params, rid, name)
        else:
            conn.enqueue(frames.reply(rid, name, await self._get(conn.caller, name, params)))

    async def _get(self, caller: Caller, name: str, params: dict[str, Any]) -> Any:
        """The fullon ``get_*`` actions: the current state, once."""
        svc = self.service
        match name:
            case "get_ticker":
                snap = await svc.read_once("tickers", {"exchange": params["exchange"],
                                                       "symbols": [params["symbol"]]}, caller)
                if not snap["tickers"]:
                    raise P.ProtocolError(P.NOT_FOUND, "no ticker for that symbol")
                return snap["tickers"][0]
            case "get_all_tickers":
                return (await svc.read_once("tickers", params, caller))["tickers"]
            case "get_order_status":
                order_id = params.pop("order_id", None)
                orders = (await svc.read_once("orders", params, caller))["orders"]
                if order_id is None:
                    return orders
                for order in orders:
                    if str(order.get("order_id")) == order_id:
                        return order
                raise P.ProtocolError(P.NOT_FOUND, "no such order")
            case "get_balance" | "get_positions":
                accounts = (await svc.read_once("accounts", params, caller))["accounts"]
                kind = "balances" if name == "get_balance" else "positions"
                return accounts[0][kind] if accounts else None
            case "get_bot_status":
                bots = (await svc.read_once("bots", params, caller))["bots"]
                if params.get("bot_id") is not None:
                    if not bots:
                        raise P.ProtocolError(P.NOT_FOUND, "no status for that bot")
                    return bots[0]
                return bots
            case "get_latest_ohlcv_bars":
                count = params.pop("count", 10)
                bars = (await svc.read_once("ohlcv", params, caller))["bars"]
                return bars[-count:]
            case "get_active_processes" | "get_system_health":
                if not full_admin(caller):
                    raise P.ProtocolError(P.FORBIDDEN, "process data is for admins only")
                procs = await process_list(svc, params.get("process_type"))
                if name == "get_active_processes":
                    return procs
                stale = sum(1 for p in procs if p["stale"])
                return {"status": "ok" if not stale else "degraded",
                        "processes": len(procs), "stale": stale}
        raise P.ProtocolError(P.INVALID_OPERATION, f"unknown action {name!r}")


def _whoami(caller: Caller) -> dict[str, Any]:
    return {"user_id": caller.user_id, "role": caller.role, "expires_at": caller.expires_at,
            "kind": caller.kind}


