"""Small helpers every handler uses to read requests."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from marshmallow import Schema

from fullon_gateway import jsonutil
from fullon_gateway.errors import BadRequest, NotFound


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 400 that says what is wrong with it."""
    body = await request.read()
    if not body:
        raise BadRequest("request body must be JSON", code="malformed_json")
    try:
        return jsonutil.loads(body)
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", code="malformed_json") from None


async def load_json(request: web.Request, schema: Schema) -> Any:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", code="malformed_json")
    return schema.load(data)


def path_int(request: web.Request, name: str, bits: int = 32) -> int:
    """A positive integer path parameter that fits the id column (``bits``: 32 for
    serial, 64 for bigserial); anything else is a 404 (no such object)."""
    raw = request.match_info[name]
    try:
        value = int(raw)
    except ValueError:
        raise NotFound(f"no such {name}: {raw!r}") from None
    if not 0 < value < 2 ** (bits - 1):
        raise NotFound(f"no such {name}: {raw!r}")
    return value
