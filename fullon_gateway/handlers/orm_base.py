"""Helpers shared by the /api/v1/orm domain handlers.

Ownership rule in one place: a row someone else owns is reported exactly like a
row that does not exist (404), so ids cannot be probed; an admin sees every row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import asyncpg
from aiohttp import web
from marshmallow import Schema

from fullon_gateway.auth.identity import Caller
from fullon_gateway.errors import Conflict, Invalid, NotFound

ORM = "/api/v1/orm"


def load_query(request: web.Request, schema: Schema) -> dict[str, Any]:
    """Validate the query string. A repeated parameter keeps its last value; an empty one
    (``?since=``) counts as absent, as forms and URL builders often send them."""
    raw = {k: request.query.getall(k)[-1] for k in request.query}
    loaded: dict[str, Any] = schema.load({k: v for k, v in raw.items() if v != ""})
    return loaded


def not_found(what: str) -> NotFound:
    return NotFound(f"no such {what.replace('_', ' ')}", code=f"{what}_not_found")


def check_owner(row: Any, caller: Caller, what: str) -> Any:
    """The row if the caller may see it; otherwise the same 404 as a missing row."""
    if row is None or not caller.can_see(row["user_id"]):
        raise not_found(what)
    return row


@contextlib.contextmanager
def db_errors(what: str) -> Iterator[None]:
    """Constraint violations the handler did not pre-empt become 409/422, never 500."""
    code = what.replace(" ", "_")
    try:
        yield
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"a {what} with these values already exists", code=f"{code}_exists"
        ) from None
    except asyncpg.ForeignKeyViolationError as exc:
        if "still referenced" in str(exc) or "update or delete" in str(exc):
            raise Conflict(
                f"this {what} is still used by other records (orders, trades, feeds...)",
                code=f"{code}_in_use",
            ) from None
        raise Invalid(
            f"{what} refers to something that does not exist",
            fields={"_schema": [str(exc.detail or exc)]},
        ) from None
    except asyncpg.CheckViolationError as exc:
        raise Invalid(f"invalid {what}", fields={"_schema": [str(exc.constraint_name)]}) from None
