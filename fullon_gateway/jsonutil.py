"""JSON encoding in one place (orjson: several times faster than the stdlib on our
payloads, and it renders datetimes as ISO 8601)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=_OPTIONS)


def dumps_str(obj: Any) -> str:
    return dumps(obj).decode()


def loads(data: str | bytes) -> Any:
    return orjson.loads(data)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=dumps(data), status=status, headers=headers, content_type="application/json"
    )


def iso(ts: dt.datetime | None) -> str | None:
    """ISO 8601 with a Z, the wire format for every timestamp."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
