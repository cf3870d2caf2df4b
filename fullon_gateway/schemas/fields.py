"""Field types shared by every domain's schemas, for data Postgres accepts as it is.

Postgres refuses NUL characters in text and jsonb, integers beyond int4/int8, and
numerics past its range; letting those through would turn bad input into a 500.
These fields refuse them with a 422 instead.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, validate

from fullon_gateway.jsonutil import iso, loads

INT4_MAX = 2**31 - 1
MONEY_MAX = Decimal("1e15")


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError("must not contain NUL characters")


def Text(max_len: int = 200, min_len: int = 0, **kw: Any) -> fields.String:
    return fields.String(validate=[validate.Length(min=min_len, max=max_len), _no_nul], **kw)


def Id(**kw: Any) -> fields.Integer:
    """A positive int4 key."""
    return fields.Integer(strict=False, validate=validate.Range(min=1, max=INT4_MAX), **kw)


def BigId(**kw: Any) -> fields.Integer:
    return fields.Integer(strict=False, validate=validate.Range(min=1, max=2**63 - 1), **kw)


def Amount(positive: bool = True, nonnegative: bool = False, **kw: Any) -> fields.Decimal:
    """A decimal amount within a range every column holds: > 0, >= 0, or signed."""
    lo = Decimal(0) if positive or nonnegative else -MONEY_MAX
    rng = validate.Range(min=lo, max=MONEY_MAX, min_inclusive=not positive)
    if positive:  # apispec drops min_inclusive=False; say it in the spec (OpenAPI 3.0 form)
        kw["metadata"] = {"exclusiveMinimum": True, **kw.get("metadata", {})}
    return fields.Decimal(allow_nan=False, validate=rng, **kw)


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > 20:
        raise ValidationError("nested too deeply (max 20 levels)")
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(str(key))
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, float) and value != value:  # NaN: not JSON
        raise ValidationError("NaN is not allowed")


def JsonObject(**kw: Any) -> fields.Dict:
    """A JSON object stored as jsonb."""
    return fields.Dict(keys=fields.String(), validate=_check_json, **kw)


class JsonOut(fields.Dict):
    """A jsonb column on the way out (asyncpg hands jsonb over as text)."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if isinstance(value, str | bytes):
            return loads(value)
        return value


def parse_time(value: Any) -> dt.datetime:
    """ISO 8601 with an offset or Z, or integer epoch milliseconds -> aware UTC datetime.

    A naive time is refused: guessing its zone would shift a trader's range by hours.
    """
    if isinstance(value, bool):
        raise ValidationError("must be ISO 8601 with an offset or Z, or epoch milliseconds")
    digits = isinstance(value, str) and value.strip().lstrip("-").isdigit()
    if isinstance(value, int | float) or digits:
        try:
            return dt.datetime.fromtimestamp(int(value) / 1000, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise ValidationError("epoch milliseconds out of range") from None
    if not isinstance(value, str):
        raise ValidationError("must be ISO 8601 with an offset or Z, or epoch milliseconds")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValidationError("time needs a UTC offset or Z (naive times are ambiguous)")
    return parsed.astimezone(dt.UTC)


class AwareDateTime(fields.Field):
    """A datetime field that accepts only zone-aware ISO 8601 or epoch ms."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime:
        return parse_time(value)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return iso(value)


class TimeInput(AwareDateTime):
    """A time given by a client: ISO 8601 with an offset or Z, or epoch milliseconds
    (documented as a plain string, since date-time alone would not admit epoch ms)."""

    def __init__(self, **kw: Any) -> None:
        meta = {"description": "ISO 8601 with offset or Z, or epoch milliseconds",
                **kw.pop("metadata", {})}
        super().__init__(metadata=meta, **kw)
