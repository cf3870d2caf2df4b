"""Fields shared by every domain's schemas."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import ValidationError, fields


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
        from fullon_gateway.jsonutil import iso

        return iso(value)
