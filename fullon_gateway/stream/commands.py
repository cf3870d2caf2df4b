"""The command registry: every WebSocket action, declared once with its schema and handler.

As in Home Assistant's ``websocket_api``: ``@command(name, schema)`` registers an
async handler ``(ctx, request, params) -> result``; the endpoint validates the params
with the schema, calls the handler and replies ``{"success": true, "result": ...}``
(a handler that queued its own reply, like ``subscribe``, returns ``REPLIED``).
Native actions (``auth``, ``refresh``, ``ping``, ``subscribe``, ``unsubscribe``) and the
fullon names (``stream_tickers``, ``get_balance``...) are declared alike; a fullon
name serves one stream, and a per-stream socket accepts only that stream's commands.

Adding a command: one decorated handler here. Errors are raised as ProtocolError or
kinds.AccessError, and become the ``error_code`` reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from fullon_gateway.auth.identity import Caller
from fullon_gateway.auth.service import AuthFailure, AuthService
from fullon_gateway.stream import frames
from fullon_gateway.stream import protocol as P
from fullon_gateway.stream.connection import Connection
from fullon_gateway.stream.kinds import KINDS, full_admin
from fullon_gateway.stream.service import StreamService

REPLIED = object()  # a handler's result when it queued its reply itself


@dataclass
class Context:
    """What a handler may use: the socket, the services, the endpoint's one stream."""

    conn: Connection
    service: StreamService
    auth: AuthService
    only_stream: str | None = None

    @property
    def caller(self) -> Caller:
        assert self.conn.caller is not None  # commands run on authenticated sockets only
        return self.conn.caller


Handler = Callable[[Context, P.Request, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Command:
    name: str
    schema: Schema
    handler: Handler
    stream: str | None = None  # the one stream it serves (None: any, or none)


COMMANDS: dict[str, Command] = {}


def command(name: str, schema: Schema | None = None,
            stream: str | None = None) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the action ``name`` (its params must pass ``schema``)."""

    def register(handler: Handler) -> Handler:
        assert name not in COMMANDS, f"two commands named {name!r}"
        COMMANDS[name] = Command(name, schema or P.EmptySchema(), handler, stream)
        return handler

    return register


def whoami(caller: Caller) -> dict[str, Any]:
    return {"user_id": caller.user_id, "role": caller.role, "expires_at": caller.expires_at,
            "kind": caller.kind}


def _since() -> fields.Field:
    return fields.Int(strict=True, validate=validate.Range(min=0))


def _schema(name: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = (),
            **extra: fields.Field) -> Schema:
    spec: dict[str, fields.Field] = {n: P.filter_field(n, True) for n in required}
    spec.update({n: P.filter_field(n, False) for n in optional})
    spec.update(extra)
    return Schema.from_dict(spec, name=f"{name}_params")() if spec else P.EmptySchema()


class _SubscribeBase(Schema):
    stream = fields.Str(required=True, validate=validate.OneOf(KINDS))
    since = _since()

    @validates_schema
    def _per_stream(self, data: dict[str, Any], **_kw: Any) -> None:
        kind = KINDS.get(data.get("stream", ""))
        if kind is None:
            return
        errors: dict[str, list[str]] = {}
        for name in kind.required:
            if name not in data:
                errors[name] = [f"required for the {kind.name} stream"]
        for name in data:
            if name not in kind.filters and name not in ("stream", "since"):
                errors[name] = [f"not a filter of the {kind.name} stream"]
        if errors:
            raise ValidationError(errors)
        problem = kind.check(data)
        if problem is not None:
            raise ValidationError({problem[0]: [problem[1]]})


def _subscribe_schema() -> Schema:
    """``subscribe``: a stream, every filter any kind takes, ``since``."""
    filters = sorted({f for kind in KINDS.values() for f in kind.filters})
    attrs: dict[str, Any] = {f: P.filter_field(f) for f in filters}
    return type("SubscribeSchema", (_SubscribeBase,), attrs)()


# -- native actions -------------------------------------------------------------------
@command("ping")
async def _ping(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    return "pong"


@command("auth", P.TokenSchema())
@command("refresh", P.TokenSchema())
async def _reauth(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    """A newer credential of the same user (moves the socket's expiry on)."""
    try:
        caller = await ctx.auth.authenticate(params["token"])
    except AuthFailure as exc:
        raise P.ProtocolError(P.FORBIDDEN, exc.reason) from None
    if caller.user_id != ctx.caller.user_id:
        raise P.ProtocolError(P.FORBIDDEN, "the token belongs to another user")
    if "read" not in caller.scopes:  # the same rule as at connect
        raise P.ProtocolError(P.FORBIDDEN, "insufficient scope")
    ctx.conn.set_caller(caller, params["token"])
    return whoami(caller)


@command("subscribe", _subscribe_schema())
async def _subscribe(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    stream = params.pop("stream")
    if ctx.only_stream is not None and stream != ctx.only_stream:
        raise P.ProtocolError(P.INVALID_OPERATION,
                              f"this socket carries the {ctx.only_stream} stream only")
    await ctx.service.subscribe(ctx.conn, KINDS[stream], params, req.request_id, req.action)
    return REPLIED


@command("unsubscribe", P.UnsubscribeSchema())
async def _unsubscribe(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    if not await ctx.service.unsubscribe(ctx.conn, params["stream_key"]):
        raise P.ProtocolError(P.NOT_FOUND, "no such subscription on this socket")
    return {"stream_key": params["stream_key"]}


# -- fullon names: live subscriptions ---------------------------------------------------
def _subscriber(stream: str) -> Handler:
    async def handler(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
        await ctx.service.subscribe(ctx.conn, KINDS[stream], params, req.request_id,
                                    req.action)
        return REPLIED

    return handler


for _name, _stream, _required, _optional in (
    ("stream_tickers", "tickers", ("exchange",), ("symbols", "symbol")),
    ("stream_order_queue", "orders", (), ("ex_id", "bot_id")),
    ("stream_positions", "accounts", (), ("ex_id",)),
    ("stream_bot_status", "bots", (), ("bot_id",)),
    ("stream_ohlcv", "ohlcv", ("exchange", "symbol", "timeframe"), ()),
    ("stream_process_health", "process", (), ("process_type",)),
):
    command(_name, _schema(_name, _required, _optional, since=_since()),
            _stream)(_subscriber(_stream))


# -- fullon names: the current state, once ----------------------------------------------
@command("get_ticker", _schema("get_ticker", ("exchange", "symbol")), "tickers")
async def _get_ticker(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    snap = await ctx.service.read_once(
        KINDS["tickers"], {"exchange": params["exchange"], "symbols": [params["symbol"]]},
        ctx.caller)
    if not snap["tickers"]:
        raise P.ProtocolError(P.NOT_FOUND, "no ticker for that symbol")
    return snap["tickers"][0]


@command("get_all_tickers", _schema("get_all_tickers", ("exchange",)), "tickers")
async def _get_all_tickers(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    return (await ctx.service.read_once(KINDS["tickers"], params, ctx.caller))["tickers"]


@command("get_order_status", _schema(
    "get_order_status", ("ex_id",), ("bot_id",),
    order_id=fields.Str(validate=validate.Length(1, 128))), "orders")
async def _get_order_status(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    order_id = params.pop("order_id", None)
    orders = (await ctx.service.read_once(KINDS["orders"], params, ctx.caller))["orders"]
    if order_id is None:
        return orders
    for order in orders:
        if str(order.get("order_id")) == order_id:
            return order
    raise P.ProtocolError(P.NOT_FOUND, "no such order")


@command("get_balance", _schema("get_balance", ("ex_id",)), "accounts")
@command("get_positions", _schema("get_positions", ("ex_id",)), "accounts")
async def _get_account(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    accounts = (await ctx.service.read_once(KINDS["accounts"], params, ctx.caller))["accounts"]
    part = "balances" if req.action == "get_balance" else "positions"
    return accounts[0][part] if accounts else None


@command("get_bot_status", _schema("get_bot_status", (), ("bot_id",)), "bots")
async def _get_bot_status(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    bots = (await ctx.service.read_once(KINDS["bots"], params, ctx.caller))["bots"]
    if params.get("bot_id") is not None:
        if not bots:
            raise P.ProtocolError(P.NOT_FOUND, "no status for that bot")
        return bots[0]
    return bots


@command("get_latest_ohlcv_bars", _schema(
    "get_latest_ohlcv_bars", ("exchange", "symbol", "timeframe"),
    count=fields.Int(strict=True, validate=validate.Range(1, 100))), "ohlcv")
async def _get_bars(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    count = params.pop("count", 10)
    bars = (await ctx.service.read_once(KINDS["ohlcv"], params, ctx.caller))["bars"]
    return bars[-count:]


@command("get_active_processes", _schema("get_active_processes", (), ("process_type",)),
         "process")
@command("get_system_health", stream="process")
async def _get_processes(ctx: Context, req: P.Request, params: dict[str, Any]) -> Any:
    if not full_admin(ctx.caller):
        raise P.ProtocolError(P.FORBIDDEN, "process data is for admins only")
    procs = await ctx.service.processes(params.get("process_type"))
    if req.action == "get_active_processes":
        return procs
    stale = sum(1 for p in procs if p["stale"])
    return {"status": "ok" if not stale else "degraded", "processes": len(procs),
            "stale": stale}


def reply(req: P.Request, result: Any) -> bytes | None:
    """The success frame for a handler's result (None when it replied itself)."""
    return None if result is REPLIED else frames.reply(req.request_id, req.action, result)
