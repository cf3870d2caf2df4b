"""OHLCV inputs: query parameters of the reads, and the ingestion batch.

The batch validator is hand-written rather than a marshmallow schema: it runs over up
to 10,000 rows per request, and names the first bad row (``trades[3].price``) so the
whole batch can be rejected with a 422 that says where to look.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from fullon_gateway.errors import Invalid
from fullon_gateway.ohlcv.loader import TradeIn
from fullon_gateway.ohlcv.timeframes import VALID_TIMEFRAMES
from fullon_gateway.schemas.fields import AwareDateTime, parse_time

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_BATCH = 10_000
MAX_TRADE_ID = 128
MAX_TYPE = 32
# Trades outside these years are data errors, not history worth storing.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)

_TF_MESSAGE = "unknown timeframe; valid timeframes: " + ", ".join(VALID_TIMEFRAMES)

# Exchange names are lowercase identifiers (kraken, binance_us); symbols are what the
# exchange calls them (BTC/USD, BTC/USD:BTC, ETH-PERP), with no spaces or controls.
EXCHANGE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
SYMBOL_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}$")


class RangeSchema(Schema):
    class Meta:
        # Query strings carry whatever a client library adds (cache busters, fullon's
        # extra hints); only the parameters below mean something here.
        unknown = EXCLUDE

    limit = fields.Integer(load_default=DEFAULT_LIMIT, strict=False,
                           validate=validate.Range(min=1, max=MAX_LIMIT))
    start_time = AwareDateTime(load_default=None)
    end_time = AwareDateTime(load_default=None)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("start_time"), data.get("end_time")
        if start is not None and end is not None and start > end:
            raise ValidationError("must not be after end_time", field_name="start_time")


class TimeseriesQuerySchema(RangeSchema):
    # fullon's client always sends it; "1m" is what fullon's own default was.
    timeframe = fields.String(load_default="1m",
                              validate=validate.OneOf(VALID_TIMEFRAMES, error=_TF_MESSAGE))


def check_timeframe(name: str) -> str:
    if name not in VALID_TIMEFRAMES:
        raise Invalid(f"unknown timeframe {name!r}; valid timeframes: "
                      + ", ".join(VALID_TIMEFRAMES),
                      code="invalid_timeframe", fields={"timeframe": [_TF_MESSAGE]})
    return name


def check_names(exchange: str, symbol: str) -> tuple[str, str]:
    """Normalized (exchange, symbol) for ingestion, or a 422 saying which is wrong."""
    exchange = exchange.strip().lower()
    errors: dict[str, list[str]] = {}
    if not EXCHANGE_RE.match(exchange):
        errors["exchange"] = ["1-64 characters: lowercase letters, digits, '_', '.', '-'"]
    if not SYMBOL_RE.match(symbol):
        errors["symbol"] = ["1-64 characters without spaces or control characters"]
    if errors:
        raise Invalid("invalid " + " and ".join(sorted(errors)), fields=errors)
    return exchange, symbol


def _number(row: dict[str, Any], name: str, *, positive: bool) -> float:
    value = row.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError("must be a number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    if positive and number <= 0:
        raise ValueError("must be greater than zero")
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _trade(row: Any) -> TradeIn:
    if not isinstance(row, dict):
        raise _RowError("_row", "must be an object")
    unknown = set(row) - {"trade_id", "timestamp", "price", "volume", "side", "type"}
    if unknown:
        raise _RowError(sorted(unknown)[0], "unknown field")
    trade_id = row.get("trade_id")
    if isinstance(trade_id, bool) or not isinstance(trade_id, str | int):
        raise _RowError("trade_id", "required: a string or an integer")
    trade_id = str(trade_id)
    if not 0 < len(trade_id) <= MAX_TRADE_ID:
        raise _RowError("trade_id", f"must be 1-{MAX_TRADE_ID} characters")
    if "timestamp" not in row:
        raise _RowError("timestamp", "required")
    try:
        ts = parse_time(row["timestamp"])
    except ValidationError as exc:
        raise _RowError("timestamp", str(exc.messages[0]) if isinstance(exc.messages, list)
                        else str(exc.messages)) from None
    if not EARLIEST <= ts < LATEST:
        raise _RowError("timestamp", "must be between 1970 and 2100")
    values = {}
    for name, positive in (("price", True), ("volume", False)):
        try:
            values[name] = _number(row, name, positive=positive)
        except ValueError as exc:
            raise _RowError(name, str(exc)) from None
    side = row.get("side")
    if not isinstance(side, str) or side.lower() not in ("buy", "sell"):
        raise _RowError("side", "must be 'buy' or 'sell'")
    kind = row.get("type")
    if kind is not None and (not isinstance(kind, str) or not 0 < len(kind) <= MAX_TYPE):
        raise _RowError("type", f"must be null or a string of 1-{MAX_TYPE} characters")
    return TradeIn(trade_id, ts, values["price"], values["volume"], side.lower(),
                   kind.lower() if kind else None)


class _RowError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def load_trade_batch(body: Any) -> list[TradeIn]:
    """``{"trades": [...]}`` -> rows for the loader; the first bad row fails the batch."""
    if not isinstance(body, dict) or set(body) - {"trades"}:
        raise Invalid("body must be {\"trades\": [...]}",
                      fields={"trades": ["required: a list of trades"]})
    rows = body.get("trades")
    if not isinstance(rows, list) or not rows:
        raise Invalid("trades must be a non-empty list",
                      fields={"trades": ["required: a non-empty list of trades"]})
    if len(rows) > MAX_BATCH:
        raise Invalid(f"at most {MAX_BATCH} trades per request",
                      fields={"trades": [f"at most {MAX_BATCH} trades per request"]})
    out = []
    for index, row in enumerate(rows):
        try:
            out.append(_trade(row))
        except _RowError as exc:
            where = f"trades[{index}]" + ("" if exc.field == "_row" else f".{exc.field}")
            raise Invalid(f"row {index} rejected, nothing stored: {where} {exc.message}",
                          code="invalid_trade", fields={where: [exc.message]}) from None
    return out
