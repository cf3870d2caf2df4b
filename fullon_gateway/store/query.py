"""A tiny WHERE-clause builder for list queries with optional filters.

Values always travel as bind parameters ($n); only column expressions written in
this package are ever put into SQL text.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.jsonutil import dumps_str
from fullon_gateway.store.conn import Conn, Viewer


class Where:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, template: str, *values: Any) -> Where:
        """``template`` uses ``{}`` for each value, e.g. ``add("user_id = {}", 7)``."""
        self.parts.append(template.format(*(self.arg(v) for v in values)))
        return self

    def maybe(self, template: str, value: Any) -> Where:
        """Add the condition only when a filter value was given."""
        if value is not None:
            self.add(template, value)
        return self

    def owner(self, column: str, caller: Viewer, user_filter: int | None = None) -> Where:
        """Users see their own rows; an admin sees all (or one user's, when asked)."""
        if not caller.is_admin:
            return self.add(f"{column} = {{}}", caller.user_id)
        return self.maybe(f"{column} = {{}}", user_filter)

    def assign(self, changes: dict[str, Any], jsonb: tuple[str, ...] = ()) -> str:
        """``col = $n, ...`` for an UPDATE's SET; columns in ``jsonb`` take JSON text.

        Column names come from validated schemas, never from clients' keys as such;
        values are always bound parameters.
        """
        return ", ".join(
            f"{col} = {self.arg(dumps_str(val))}::jsonb" if col in jsonb
            else f"{col} = {self.arg(val)}"
            for col, val in changes.items()
        )

    def page(self, column: str, after: int | None, descending: bool = False) -> Where:
        return self.maybe(f"{column} {'<' if descending else '>'} {{}}", after)

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.parts)) if self.parts else ""


def deleted(status: str) -> bool:
    """Did a DELETE command tag (``"DELETE n"``) remove anything?"""
    return status != "DELETE 0"


async def update_by_id(
    conn: Conn,
    table: str,
    key: str,
    ident: int,
    changes: dict[str, Any],
    *,
    jsonb: tuple[str, ...] = (),
    touch: bool = True,
) -> None:
    """``UPDATE table SET changes[, updated_at = now()] WHERE key = ident``; no-op if empty.

    ``table`` and ``key`` are names written in this package; values are bound.
    """
    if not changes:
        return
    w = Where()
    sets = w.assign(changes, jsonb=jsonb)
    if touch:
        sets += ", updated_at = now()"
    await conn.execute(f"UPDATE {table} SET {sets} WHERE {key} = {w.arg(ident)}", *w.args)


# asyncpg's methods are untyped: these name what each query gives back, once.
async def fetch_rows(conn: Conn, sql: str, *args: Any) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
    return rows


async def fetch_row(conn: Conn, sql: str, *args: Any) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(sql, *args)
    return row


async def fetch_new(conn: Conn, sql: str, *args: Any) -> asyncpg.Record:
    """The row an ``INSERT ... RETURNING`` (or an aggregate) always gives back."""
    row = await fetch_row(conn, sql, *args)
    assert row is not None
    return row


async def fetch_page(conn: Conn, select: str, w: Where, key: str, after: int | None,
                     limit: int | None, *, descending: bool = False) -> list[asyncpg.Record]:
    """One keyset page: ``select`` with ``w`` and ``key`` past ``after``, ordered by ``key``,
    ``limit + 1`` rows (the extra row tells the caller a next page exists; no limit: all).

    The page condition and the order come from the one ``key``, so they cannot disagree.
    """
    w.page(key, after, descending)
    order = f"{key} DESC" if descending else key
    bound = "" if limit is None else f" LIMIT {int(limit) + 1}"
    return await fetch_rows(conn, f"{select} {w.sql()} ORDER BY {order}{bound}", *w.args)
