"""Queries on API keys."""

from __future__ import annotations

import datetime as dt

import asyncpg

from fullon_gateway.store.conn import Conn
from fullon_gateway.store.query import Where, deleted, fetch_new, fetch_page, fetch_row

KEY_COLUMNS = (
    "key_id, user_id, name, key_prefix, scopes, is_active, expires_at, created_at, last_used_at"
)


async def create_key(
    conn: Conn,
    user_id: int,
    name: str,
    key_hash: bytes,
    key_prefix: str,
    scopes: list[str],
    expires_at: dt.datetime | None,
) -> asyncpg.Record:
    return await fetch_new(
        conn,
        f"""INSERT INTO api_keys (user_id, name, key_hash, key_prefix, scopes, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLUMNS}""",
        user_id, name, key_hash, key_prefix, scopes, expires_at,
    )


async def by_hash(conn: Conn, key_hash: bytes) -> asyncpg.Record | None:
    return await fetch_row(
        conn, f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash
    )


async def list_for_user(conn: Conn, user_id: int, after: int | None,
                        limit: int) -> list[asyncpg.Record]:
    """The user's keys in creation order: a page past key ``after``."""
    return await fetch_page(conn, f"SELECT {KEY_COLUMNS} FROM api_keys",
                            Where().add("user_id = {}", user_id), "key_id", after, limit)


async def owner_of(conn: Conn, key_id: int) -> int | None:
    owner: int | None = await conn.fetchval(
        "SELECT user_id FROM api_keys WHERE key_id = $1", key_id
    )
    return owner


async def deactivate(conn: Conn, key_id: int) -> asyncpg.Record | None:
    return await fetch_row(
        conn,
        f"UPDATE api_keys SET is_active = false WHERE key_id = $1 RETURNING {KEY_COLUMNS}",
        key_id,
    )


async def delete(conn: Conn, key_id: int) -> bool:
    status = await conn.execute("DELETE FROM api_keys WHERE key_id = $1", key_id)
    return deleted(status)


async def touch_many(conn: Conn, used: dict[int, dt.datetime]) -> None:
    """Record last use for many keys in one statement (batched, not per request)."""
    if not used:
        return
    await conn.execute(
        """UPDATE api_keys k SET last_used_at = u.ts
             FROM unnest($1::int[], $2::timestamptz[]) AS u(id, ts)
            WHERE k.key_id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.ts)""",
        list(used), list(used.values()),
    )
