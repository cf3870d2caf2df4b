"""The WebSocket endpoints of the live streams: handshake, auth, rate limit, dispatch.

``/api/v1/cache/ws`` carries every stream; ``/api/v1/cache/ws/{stream}/{connection_id}``
carries one (``connection_id`` is a label for logs only: two sockets with the same
label are two independent connections). The upgrade itself is public; the socket
authenticates with ``?token=`` (JWT or API key) or a first ``auth`` message, and a
refused credential closes it with 1008 and the reason. What each action does is the
command registry's (commands.py).

This task reads; frames go out through the connection (connection.py): written at
once when the socket is idle, else queued for its writer task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

from fullon_gateway.auth.identity import Caller, optional_caller, public
from fullon_gateway.auth.middleware import credential_of
from fullon_gateway.auth.service import AuthFailure
from fullon_gateway.errors import NotFound
from fullon_gateway.keys import AUTH, METRICS, SETTINGS, STREAMS
from fullon_gateway.stream import frames
from fullon_gateway.stream import protocol as P
from fullon_gateway.stream.commands import COMMANDS, Context, reply, whoami
from fullon_gateway.stream.connection import Connection
from fullon_gateway.stream.fullon import cache_api
from fullon_gateway.stream.fullon.cache_api import CacheApi
from fullon_gateway.stream.kinds import KINDS, AccessError

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008


class StreamEndpoint:
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/cache/ws", self.ws_all),
            web.get("/api/v1/cache/ws/{stream}/{connection_id}", self.ws_stream),
        ]

    @public
    async def ws_all(self, request: web.Request) -> web.WebSocketResponse:
        """WebSocket carrying every stream (auth: ?token= or a first auth message)."""
        return await _Session(request, None, "").serve()

    @public
    async def ws_stream(self, request: web.Request) -> web.WebSocketResponse:
        """WebSocket for one stream; connection_id is only a label."""
        stream = request.match_info["stream"]
        if stream not in KINDS:
            raise NotFound(f"no such stream: {stream!r}", code="stream_not_found")
        return await _Session(request, stream, request.match_info["connection_id"][:64]).serve()


class _Session:
    """One socket's reading side: auth, rate limit, dispatch."""

    def __init__(self, request: web.Request, stream: str | None, label: str) -> None:
        self.request = request
        self.app = request.app
        self.settings = request.app[SETTINGS]
        self.auth = request.app[AUTH]
        self.service = request.app[STREAMS]
        self.only_stream = stream
        self.label = label
        self._window = 0
        self._count = 0
        self.cache_api: CacheApi | None = None  # fullon_cache_api's actions (per-stream)

    async def serve(self) -> web.WebSocketResponse:
        s = self.settings
        # No aiohttp heartbeat (it waits only half a period for the pong) and no
        # autoping (it hides pongs): sweeps.heartbeat_forever pings, and every frame
        # read here, pongs included, counts as activity.
        # aiohttp refuses a message of max_msg_size bytes; the limit is inclusive.
        ws = web.WebSocketResponse(compress=s.ws_compress, max_msg_size=s.ws_max_frame + 1,
                                   autoping=False)
        await ws.prepare(self.request)
        batch = self.request.query.get("batch", "") in ("1", "true")
        conn = Connection(ws, self.app[METRICS], s.ws_queue_limit, batch, self.label,
                          self.service.counters, self.request.transport,
                          self.service.fanout.hub.burst)
        conn.start()
        try:
            caller = await self._authenticate(conn)
            if caller is None:
                return ws
            if "read" not in caller.scopes:  # streams are reads; a trade-only key is not
                await conn.close_with(POLICY_VIOLATION, "insufficient scope")
                return ws
            conn.set_caller(caller)
            if self.only_stream is not None:
                self.cache_api = CacheApi(self.service, conn, self.label)
            self.service.register(conn)
            ctx = Context(conn, self.service, self.auth, self.only_stream)
            async for msg in ws:
                conn.last_seen = time.monotonic()
                if msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    pass  # activity is all a pong says
                elif msg.type == WSMsgType.TEXT:
                    await self._on_text(ctx, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    conn.enqueue(frames.error(None, None, P.MALFORMED_MESSAGE,
                                              "binary frames are not supported"))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
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
        conn.enqueue(frames.reply(req.request_id, "auth", whoami(caller)))
        return caller

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

    async def _on_text(self, ctx: Context, text: str) -> None:
        conn = ctx.conn
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
            cmd = COMMANDS.get(req.action)
            if cmd is None:
                raise P.ProtocolError(P.INVALID_OPERATION, f"unknown action {req.action!r}")
            only = self.only_stream
            if only is not None and cmd.stream not in (None, only):
                raise P.ProtocolError(P.INVALID_OPERATION,
                                      f"this socket carries the {only} stream only")
            raw = req.params
            if only is not None and req.action == "subscribe" and "stream" not in raw:
                raw = {**raw, "stream": only}  # on a per-stream endpoint the path says it
            result = await cmd.handler(ctx, req, P.load_params(cmd.schema, raw))
            frame = reply(req, result)
            if frame is not None:
                conn.enqueue(frame)
        except (P.ProtocolError, AccessError) as exc:
            conn.enqueue(frames.error(request_id, action_name, exc.code, exc.message))
        except (aioredis.RedisError, OSError) as exc:
            log.warning("stream request failed: %r", exc)
            conn.enqueue(frames.error(request_id, action_name, P.UNAVAILABLE,
                                      "live data store unavailable, try again"))
        except Exception:
            log.exception("stream request failed")
            conn.enqueue(frames.error(request_id, action_name, P.INTERNAL_ERROR,
                                      "internal error"))
