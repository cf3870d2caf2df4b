"""Queries on users."""

from __future__ import annotations

from typing import Any

import asyncpg

from fullon_gateway.errors import Conflict

USER_COLUMNS = "user_id, email, name, role, is_active, created_at, updated_at"


async def create_user(
    conn: asyncpg.Pool | asyncpg.Connection,
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


async def by_email_with_hash(conn: Any, email: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)",
        email,
    )
    return row


async def by_id(conn: Any, user_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {USER_COLUMNS} FROM users WHERE user_id = $1", user_id
    )
    return row


async def set_password_hash(conn: Any, user_id: int, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE user_id = $1",
        user_id, password_hash,
    )
