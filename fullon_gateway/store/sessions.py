"""Queries on login sessions and their refresh tokens."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg

from fullon_gateway.store.conn import Conn
from fullon_gateway.store.query import fetch_row


async def create_session(
    conn: Conn,
    user_id: int,
    expires_at: dt.datetime,
    user_agent: str | None,
    address: str | None,
) -> uuid.UUID:
    sid = uuid.uuid4()
    await conn.execute(
        """INSERT INTO sessions (session_id, user_id, expires_at, user_agent, address)
           VALUES ($1, $2, $3, $4, $5)""",
        sid, user_id, expires_at, user_agent, address,
    )
    return sid


async def add_refresh_token(
    conn: Conn, token_hash: bytes, sid: uuid.UUID, expires_at: dt.datetime
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        token_hash, sid, expires_at,
    )


async def retire_refresh_token(conn: Conn, token_hash: bytes) -> asyncpg.Record | None:
    """Mark an unused, unexpired token used, atomically; None if it was not usable.

    The UPDATE ... WHERE used_at IS NULL makes two concurrent refreshes with the same
    token race safely: exactly one wins.
    """
    return await fetch_row(
        conn,
        """UPDATE refresh_tokens r SET used_at = now()
             FROM sessions s
            WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > now()
              AND s.session_id = r.session_id AND s.revoked_at IS NULL
              AND s.expires_at > now()
        RETURNING r.session_id, s.user_id, s.expires_at""",
        token_hash,
    )


async def refresh_token_session(conn: Conn, token_hash: bytes) -> asyncpg.Record | None:
    return await fetch_row(
        conn,
        """SELECT r.session_id, r.used_at, s.user_id FROM refresh_tokens r
             JOIN sessions s USING (session_id) WHERE r.token_hash = $1""",
        token_hash,
    )


async def revoke_session(conn: Conn, sid: uuid.UUID, why: str) -> bool:
    status = await conn.execute(
        """UPDATE sessions SET revoked_at = now(), revoked_why = $2
            WHERE session_id = $1 AND revoked_at IS NULL""",
        sid, why,
    )
    return bool(status != "UPDATE 0")


async def revoke_user_sessions(conn: Conn, user_id: int, why: str) -> int:
    """Revoke every live session of a user (their refresh tokens die with them)."""
    done: str = await conn.execute(
        """UPDATE sessions SET revoked_at = now(), revoked_why = $2
            WHERE user_id = $1 AND revoked_at IS NULL""",
        user_id,
        why,
    )
    return int(done.split()[-1])


async def session_state(conn: Conn, sid: uuid.UUID) -> asyncpg.Record | None:
    return await fetch_row(
        conn,
        """SELECT user_id, expires_at, revoked_at, revoked_why FROM sessions
            WHERE session_id = $1""", sid,
    )
