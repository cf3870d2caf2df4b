"""Queries behind /users: the admin's view of accounts (auth's own queries are in users.py)."""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.store.query import Where
from fullon_gateway.store.users import USER_COLUMNS


async def list_users(
    conn: Any,
    *,
    role: str | None,
    is_active: bool | None,
    q: str | None,
    after: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    w = Where().maybe("role = {}", role).maybe("is_active = {}", is_active).page("user_id", after)
    if q:
        w.add("(strpos(lower(email), lower({})) > 0 OR strpos(lower(name), lower({})) > 0)", q, q)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {USER_COLUMNS} FROM users {w.sql()} ORDER BY user_id LIMIT {limit + 1}", *w.args
    )
    return rows


async def update_user(conn: Any, user_id: int, changes: dict[str, Any]) -> asyncpg.Record | None:
    if not changes:
        row: asyncpg.Record | None = await conn.fetchrow(
            f"SELECT {USER_COLUMNS} FROM users WHERE user_id = $1", user_id
        )
        return row
    w = Where()
    sets = w.assign(changes)
    row = await conn.fetchrow(
        f"UPDATE users SET {sets}, updated_at = now() WHERE user_id = {w.arg(user_id)} "
        f"RETURNING {USER_COLUMNS}",
        *w.args,
    )
    return row


async def delete_user(conn: Any, user_id: int) -> bool:
    return bool(await conn.execute("DELETE FROM users WHERE user_id = $1", user_id) != "DELETE 0")
