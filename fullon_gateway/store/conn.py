"""The types every query function takes: a connection (or the pool) and the caller."""

from __future__ import annotations

from typing import Protocol, TypeAlias

import asyncpg

# A query runs on the pool (one statement, any connection) or on a connection held
# for a transaction; both offer fetch/fetchrow/fetchval/execute.
Conn: TypeAlias = asyncpg.Pool | asyncpg.Connection


class Viewer(Protocol):
    """Who is asking: users see their own rows, admins everyone's (auth.identity.Caller)."""

    @property
    def user_id(self) -> int: ...

    @property
    def is_admin(self) -> bool: ...
