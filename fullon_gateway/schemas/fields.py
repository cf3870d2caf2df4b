"""Field types for platform data that Postgres accepts as they are.

Postgres refuses NUL characters in text and jsonb, integers beyond int4/int8, and
numerics past its range; letting those through would turn bad input into a 500.
These fields refuse them with a 422 instead.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, validate

from fullon_gateway.schemas.common import AwareDateTime

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
            from fullon_gateway.jsonutil import loads

            return loads(value)
        return value


class TimeInput(AwareDateTime):
    """A time given by a client: ISO 8601 with an offset or Z, or epoch milliseconds
    (documented as a plain string, since date-time alone would not admit epoch ms)."""

    def __init__(self, **kw: Any) -> None:
        meta = {"description": "ISO 8601 with offset or Z, or epoch milliseconds",
                **kw.pop("metadata", {})}
        super().__init__(metadata=meta, **kw)
