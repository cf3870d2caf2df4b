"""Fast output shaping from a marshmallow schema's field list.

marshmallow's dump runs its field machinery per value (tens of microseconds per row
field); a 100-row page spent most of its time there. Output needs no validation: the
rows come from our own SQL, and orjson already writes datetimes as ISO 8601 with Z and
(through jsonutil) Decimals as numbers. So a Projection keeps exactly the schema's
fields, in its names, and converts only what orjson cannot (jsonb text, nested
schemas). The marshmallow schema stays the single description of the output: the
OpenAPI document is generated from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from marshmallow import Schema, fields

from fullon_gateway.jsonutil import loads
from fullon_gateway.schemas.fields import JsonOut

_MISSING = object()
Convert = Callable[[Any], Any] | None


def _json(value: Any) -> Any:
    return loads(value) if isinstance(value, str | bytes) else value


def _converter(field: fields.Field) -> Convert:
    if isinstance(field, JsonOut):
        return _json
    if isinstance(field, fields.Nested):
        inner = Projection(field.schema)
        many = bool(field.many)
        return lambda v: None if v is None else inner.dump(v, many=many)
    if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
        inner_list = Projection(field.inner.schema)
        return lambda v: None if v is None else inner_list.dump(v, many=True)
    if isinstance(field, fields.Float):
        return lambda v: None if v is None else float(v)
    return None


class Projection:
    """``dump(obj | rows, many=...)`` with the fields of ``schema`` (a drop-in for dump)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._fields: list[tuple[str, str, Convert]] = [
            (field.data_key or name, field.attribute or name, _converter(field))
            for name, field in schema.dump_fields.items()
        ]

    def _one(self, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        get = obj.get
        for key, attr, convert in self._fields:
            value = get(attr, _MISSING)
            if value is _MISSING:
                continue  # like marshmallow: absent attributes are left out
            out[key] = convert(value) if convert is not None and value is not None else value
        return out

    def dump(self, obj: Any, many: bool = False) -> Any:
        if many:
            return [self._one(o) for o in obj]
        return self._one(obj)

    def dump_many(self, rows: Iterable[Any]) -> list[dict[str, Any]]:
        return [self._one(o) for o in rows]
