"""The WebSocket protocol: envelopes, error codes, and the fields params are made of.

Client -> server: ``{"action", "request_id", "params"}``. Which actions exist, and
the schema each one's params must pass, is the command registry's (commands.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from fullon_gateway import jsonutil
from fullon_gateway.ohlcv.timeframes import VALID_TIMEFRAMES as TIMEFRAMES

MALFORMED_MESSAGE = "MALFORMED_MESSAGE"
INVALID_OPERATION = "INVALID_OPERATION"
INVALID_PARAMS = "INVALID_PARAMS"
NOT_FOUND = "NOT_FOUND"
FORBIDDEN = "FORBIDDEN"
SUBSCRIPTION_LIMIT = "SUBSCRIPTION_LIMIT"
RATE_LIMITED = "RATE_LIMITED"
INTERNAL_ERROR = "INTERNAL_ERROR"
# Retryable: the live data store did not answer in time (busy or restarting).
UNAVAILABLE = "UNAVAILABLE"

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


class UnsubscribeSchema(Schema):
    # No upper bound of its own: a ticker key names up to 500 symbols (tens of KB), and
    # ws_max_frame already bounds what a client can send.
    stream_key = fields.Str(required=True, validate=validate.Length(min=1))


class TokenSchema(Schema):
    token = fields.Str(required=True, validate=validate.Length(1, 8192))


class EmptySchema(Schema):
    pass


def filter_field(name: str, required: bool = False) -> fields.Field:
    """The field of one stream filter; a fresh instance each call (marshmallow fields
    must not be shared between schemas). Every filter any stream kind names is here."""
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


def load_params(schema: Schema, params: dict[str, Any]) -> dict[str, Any]:
    """Params validated by ``schema``; ProtocolError(INVALID_PARAMS) saying what is wrong."""
    try:
        data: dict[str, Any] = schema.load(params)
    except ValidationError as exc:
        raise ProtocolError(INVALID_PARAMS, _describe(exc.messages)) from None
    return data


def _describe(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{k}: {_describe(v)}" for k, v in messages.items())
    if isinstance(messages, list):
        return ", ".join(str(m) for m in messages)
    return str(messages)
