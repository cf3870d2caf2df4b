"""The WebSocket protocol: envelopes, error codes, and one marshmallow schema per action.

Client -> server: ``{"action", "request_id", "params"}``. Every action is in
``ACTIONS`` with the schema its params must pass; the fullon action names
(``stream_tickers``, ``get_balance``...) are aliases onto a stream with a kind:
``subscribe`` (a live subscription) or ``get`` (the current state, once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from fullon_gateway import jsonutil
from fullon_gateway.ohlcv.timeframes import VALID_TIMEFRAMES as TIMEFRAMES
from fullon_gateway.stream.streams import STREAMS

MALFORMED_MESSAGE = "MALFORMED_MESSAGE"
INVALID_OPERATION = "INVALID_OPERATION"
INVALID_PARAMS = "INVALID_PARAMS"
NOT_FOUND = "NOT_FOUND"
FORBIDDEN = "FORBIDDEN"
SUBSCRIPTION_LIMIT = "SUBSCRIPTION_LIMIT"
RATE_LIMITED = "RATE_LIMITED"
INTERNAL_ERROR = "INTERNAL_ERROR"

_NAME = validate.Regexp(r"^[A-Za-z0-9_.\-]{1,64}$",
                        error="must be 1-64 letters, digits, '_', '.' or '-'")
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9_.:/\-]{1,64}$")
_SYMBOL = validate.Regexp(_SYMBOL_RE, error="must be 1-64 letters, digits or '_.:/-'")
_ID = validate.Range(min=1, max=2**31 - 1)


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Symbols(fields.Field):
    """``"*"``, a list of symbols, or one comma-separated string of them."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if value == "*":
            return "*"
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not value or len(value) > 500:
            raise ValidationError("must be \"*\" or a list of 1 to 500 symbols")
        for item in value:
            if not isinstance(item, str) or _SYMBOL_RE.match(item) is None:
                raise ValidationError(f"invalid symbol {item!r}")
        return value


class _Filters(Schema):
    exchange = fields.Str(validate=_NAME)
    symbols = _Symbols()
    symbol = fields.Str(validate=_SYMBOL)
    timeframe = fields.Str(validate=validate.OneOf(TIMEFRAMES))
    ex_id = fields.Int(strict=True, validate=_ID)
    bot_id = fields.Int(strict=True, validate=_ID)
    process_type = fields.Str(validate=_NAME)


_REQUIRED = {
    "tickers": ("exchange",),
    "trades": ("exchange", "symbol"),
    "ohlcv": ("exchange", "symbol", "timeframe"),
}
_ALLOWED = {
    "tickers": {"exchange", "symbols", "symbol"},
    "trades": {"exchange", "symbol"},
    "ohlcv": {"exchange", "symbol", "timeframe"},
    "orders": {"ex_id", "bot_id"},
    "accounts": {"ex_id"},
    "bots": {"bot_id"},
    "process": {"process_type"},
}


def check_filters(stream: str, data: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    for name in _REQUIRED.get(stream, ()):
        if name not in data:
            errors[name] = [f"required for the {stream} stream"]
    for name in data:
        if name not in _ALLOWED[stream] and name not in ("stream", "since"):
            errors[name] = [f"not a filter of the {stream} stream"]
    if errors:
        raise ValidationError(errors)


class SubscribeSchema(_Filters):
    stream = fields.Str(required=True, validate=validate.OneOf(STREAMS))
    since = fields.Int(strict=True, validate=validate.Range(min=0))

    @validates_schema
    def _per_stream(self, data: dict[str, Any], **_kw: Any) -> None:
        if data.get("stream") in _ALLOWED:
            check_filters(data["stream"], data)
        # one "symbol" on tickers means that symbol only
        if data.get("stream") == "tickers" and "symbol" in data and "symbols" in data:
            raise ValidationError({"symbol": ["give symbol or symbols, not both"]})


class UnsubscribeSchema(Schema):
    # No upper bound of its own: a ticker key names up to 500 symbols (tens of KB), and
    # ws_max_frame already bounds what a client can send.
    stream_key = fields.Str(required=True, validate=validate.Length(min=1))


class TokenSchema(Schema):
    token = fields.Str(required=True, validate=validate.Length(1, 8192))


class EmptySchema(Schema):
    pass


@dataclass(frozen=True)
class Action:
    name: str
    schema: Schema
    kind: str  # control | subscribe | get
    stream: str | None = None
    # For aliases: how the alias's params map onto the stream's filters.
    fixed: tuple[tuple[str, Any], ...] = ()


def _field(name: str, required: bool) -> fields.Field:
    """A fresh field instance (marshmallow fields must not be shared between schemas)."""
    kw: dict[str, Any] = {"required": required}
    match name:
        case "exchange" | "process_type":
            return fields.Str(validate=_NAME, **kw)
        case "symbol":
            return fields.Str(validate=_SYMBOL, **kw)
        case "symbols":
            return _Symbols(**kw)
        case "timeframe":
            return fields.Str(validate=validate.OneOf(TIMEFRAMES), **kw)
        case "ex_id" | "bot_id":
            return fields.Int(strict=True, validate=_ID, **kw)
    raise AssertionError(name)


def _alias_schema(stream: str, required: tuple[str, ...], optional: tuple[str, ...],
                  extra: dict[str, fields.Field] | None = None) -> Schema:
    spec: dict[str, fields.Field] = {n: _field(n, True) for n in required}
    spec.update({n: _field(n, False) for n in optional})
    spec.update(extra or {})
    if not spec:
        return EmptySchema()
    return Schema.from_dict(spec, name=f"{stream}_alias")()


def _since() -> dict[str, fields.Field]:
    return {"since": fields.Int(strict=True, validate=validate.Range(min=0))}


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("auth", TokenSchema(), "control"),
    Action("refresh", TokenSchema(), "control"),
    Action("ping", EmptySchema(), "control"),
    Action("subscribe", SubscribeSchema(), "subscribe"),
    Action("unsubscribe", UnsubscribeSchema(), "control"),
    # fullon names
    Action("get_ticker", _alias_schema("tickers", ("exchange", "symbol"), ()), "get", "tickers"),
    Action("get_all_tickers", _alias_schema("tickers", ("exchange",), ()), "get", "tickers"),
    Action("stream_tickers", _alias_schema("tickers", ("exchange",), ("symbols", "symbol"),
                                           _since()), "subscribe", "tickers"),
    Action("get_order_status", _alias_schema(
        "orders", ("ex_id",), ("bot_id",),
        {"order_id": fields.Str(validate=validate.Length(1, 128))}), "get", "orders"),
    Action("stream_order_queue", _alias_schema("orders", (), ("ex_id", "bot_id"), _since()),
           "subscribe", "orders"),
    Action("get_balance", _alias_schema("accounts", ("ex_id",), ()), "get", "accounts"),
    Action("get_positions", _alias_schema("accounts", ("ex_id",), ()), "get", "accounts"),
    Action("stream_positions", _alias_schema("accounts", (), ("ex_id",), _since()),
           "subscribe", "accounts"),
    Action("get_bot_status", _alias_schema("bots", (), ("bot_id",)), "get", "bots"),
    Action("stream_bot_status", _alias_schema("bots", (), ("bot_id",), _since()),
           "subscribe", "bots"),
    Action("get_latest_ohlcv_bars", _alias_schema(
        "ohlcv", ("exchange", "symbol", "timeframe"), (),
        {"count": fields.Int(strict=True, validate=validate.Range(1, 100))}), "get", "ohlcv"),
    Action("stream_ohlcv", _alias_schema("ohlcv", ("exchange", "symbol", "timeframe"), (),
                                         _since()), "subscribe", "ohlcv"),
    Action("get_system_health", EmptySchema(), "get", "process"),
    Action("get_active_processes", _alias_schema("process", (), ("process_type",)), "get",
           "process"),
    Action("stream_process_health", _alias_schema("process", (), ("process_type",), _since()),
           "subscribe", "process"),
)}


@dataclass(frozen=True)
class Request:
    action: str
    request_id: Any
    params: dict[str, Any]


def parse(text: str | bytes) -> Request:
    """A client frame -> Request; ProtocolError(MALFORMED_MESSAGE) when it is not one."""
    try:
        msg = jsonutil.loads(text)
    except ValueError:
        raise ProtocolError(MALFORMED_MESSAGE, "message is not valid JSON") from None
    if not isinstance(msg, dict):
        raise ProtocolError(MALFORMED_MESSAGE, "message must be a JSON object")
    request_id = msg.get("request_id")
    bad_type = request_id is not None and not isinstance(request_id, str | int)
    if bad_type or isinstance(request_id, bool) or (
            isinstance(request_id, str) and len(request_id) > 128):
        raise ProtocolError(MALFORMED_MESSAGE, "request_id must be a string or an integer")
    action = msg.get("action")
    params = msg.get("params", {})
    if params is None:
        params = {}
    if not isinstance(action, str) or not isinstance(params, dict):
        raise _Malformed(request_id, action if isinstance(action, str) else None)
    return Request(action, request_id, params)


class _Malformed(ProtocolError):
    def __init__(self, request_id: Any, action: str | None) -> None:
        super().__init__(MALFORMED_MESSAGE,
                         "message needs a string \"action\" and an object \"params\"")
        self.request_id = request_id
        self.action = action


def load_params(action: Action, params: dict[str, Any]) -> dict[str, Any]:
    try:
        data: dict[str, Any] = action.schema.load(params)
    except ValidationError as exc:
        raise ProtocolError(INVALID_PARAMS, _describe(exc.messages)) from None
    if action.kind == "subscribe" and action.stream is not None:
        data["stream"] = action.stream
    if data.get("stream") == "tickers" and "symbol" in data:
        data["symbols"] = [data.pop("symbol")]
    return data


def _describe(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{k}: {_describe(v)}" for k, v in messages.items())
    if isinstance(messages, list):
        return ", ".join(str(m) for m in messages)
    return str(messages)
