"""Queries on users: what auth needs, and the admin's view of accounts behind /users."""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.errors import Conflict
from fullon_gateway.store.conn import Conn
from fullon_gateway.store.query import (
    Where,
    deleted,
    fetch_page,
    fetch_row,
    update_by_id,
)

USER_COLUMNS = "user_id, email, name, role, is_active, created_at, updated_at"


async def create_user(
    conn: Conn,
    email: str,
    password_hash: str,
    name: str = "",
    role: str = "user",
) -> asyncpg.Record:
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO users (email, name, password_hash, role)
                VALUES ($1, $2, $3, $4) RETURNING {USER_COLUMNS}""",
            email, name, password_hash, role,
        )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"a user with email {email} already exists", code="user_exists") from None
    assert row is not None
    return row


async def by_email_with_hash(conn: Conn, email: str) -> asyncpg.Record | None:
    return await fetch_row(
        conn,
        f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)",
        email,
    )


async def by_id(conn: Conn, user_id: int) -> asyncpg.Record | None:
    return await fetch_row(conn, f"SELECT {USER_COLUMNS} FROM users WHERE user_id = $1", user_id)


async def set_password_hash(conn: Conn, user_id: int, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE user_id = $1",
        user_id, password_hash,
    )


async def list_users(
    conn: Conn,
    *,
    role: str | None,
    is_active: bool | None,
    q: str | None,
    after: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    w = Where().maybe("role = {}", role).maybe("is_active = {}", is_active)
    if q:
        w.add("(strpos(lower(email), lower({})) > 0 OR strpos(lower(name), lower({})) > 0)", q, q)
    return await fetch_page(conn, f"SELECT {USER_COLUMNS} FROM users", w, "user_id", after, limit)


async def update_user(conn: Conn, user_id: int, changes: dict[str, Any]) -> asyncpg.Record | None:
    await update_by_id(conn, "users", "user_id", user_id, changes)
    return await by_id(conn, user_id)


async def delete_user(conn: Conn, user_id: int) -> bool:
    return deleted(await conn.execute("DELETE FROM users WHERE user_id = $1", user_id))
