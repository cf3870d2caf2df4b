"""Cursor pagination: ``?limit=&cursor=`` in, ``{"items", "next_cursor"}`` out.

Keyset, not offset: a cursor holds the sort key of the last row served (the row's
primary key, which is unique and assigned in insert order), and the next page is
``WHERE key > last`` (or ``<`` for newest-first lists). Rows inserted while a client
pages can therefore never shift a page boundary: nothing is served twice and nothing
that existed at the first page is skipped. The cursor is base64url JSON, opaque to
clients, and carries the list it belongs to so a cursor from another list is refused.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from fullon_gateway import jsonutil

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


_BAD_CURSOR = "invalid cursor (use next_cursor from the previous page)"


def encode_cursor(scope: str, key: int) -> str:
    raw = jsonutil.dumps({"s": scope, "k": key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(scope: str, cursor: str) -> int:
    """The last key of the previous page, or a ValidationError on ``cursor``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = jsonutil.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(data, dict) or data.get("s") != scope:
            raise ValueError("wrong list")
        key = data["k"]
        if not isinstance(key, int) or isinstance(key, bool) or not 0 <= key < 2**63:
            raise ValueError("bad key")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
        raise ValidationError({"cursor": [_BAD_CURSOR]}) from None
    return key


class PageQuery(Schema):
    """``limit`` and ``cursor``; list query schemas inherit these."""

    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"page size, 1..{MAX_LIMIT}"},
    )
    cursor = fields.String(
        load_default=None,
        validate=[
            validate.Length(max=200),
            validate.Regexp(r"^[A-Za-z0-9_-]*$", error=_BAD_CURSOR),
        ],
        metadata={"description": "next_cursor of the previous page"},
    )


@dataclass(frozen=True)
class Page:
    scope: str
    limit: int
    after: int | None  # key of the last row already served

    @classmethod
    def from_query(cls, scope: str, query: dict[str, Any]) -> Page:
        cursor = query.get("cursor")
        after = decode_cursor(scope, cursor) if cursor else None
        return cls(scope, query["limit"], after)

    def body(
        self, rows: Sequence[Any], key: str, dump: Callable[[Sequence[Any]], list[Any]]
    ) -> dict[str, Any]:
        """Rows were fetched with ``limit + 1``: the extra one says a next page exists."""
        more = len(rows) > self.limit
        rows = rows[: self.limit]
        next_cursor = encode_cursor(self.scope, int(rows[-1][key])) if more and rows else None
        return {"items": dump(rows), "next_cursor": next_cursor}
