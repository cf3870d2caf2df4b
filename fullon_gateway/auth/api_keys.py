"""API keys: issue (shown once, stored as a hash), deactivate, delete."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from fullon_gateway.auth.identify import Identifier, now
from fullon_gateway.auth.identity import ADMIN_SCOPES, USER_SCOPES, Caller
from fullon_gateway.auth.revocation import Revocation
from fullon_gateway.auth.tokens import API_KEY_PREFIX, new_api_key, sha256
from fullon_gateway.errors import Forbidden, Invalid, NotFound
from fullon_gateway.store import api_keys as keys_db


class ApiKeys:
    def __init__(self, db: asyncpg.Pool, identify: Identifier) -> None:
        self.db = db
        self.identify = identify

    async def create(
        self, caller: Caller, name: str, scopes: list[str], expires_at: dt.datetime | None
    ) -> dict[str, Any]:
        allowed = ADMIN_SCOPES if caller.is_admin else USER_SCOPES
        refused = sorted(set(scopes) - allowed)
        if refused:
            raise Forbidden(
                f"scopes {', '.join(refused)} need an admin account", code="scope_not_allowed"
            )
        if expires_at is not None and expires_at <= now():
            raise Invalid("expires_at must be in the future",
                          fields={"expires_at": ["must be in the future"]})
        key = new_api_key()
        row = await keys_db.create_key(
            self.db, caller.user_id, name, sha256(key), key[: len(API_KEY_PREFIX) + 6],
            sorted(set(scopes)), expires_at,
        )
        return {**dict(row), "key": key}

    async def _owned(self, caller: Caller, key_id: int) -> None:
        owner = await keys_db.owner_of(self.db, key_id)
        if owner is None or not caller.can_see(owner):
            raise NotFound("no such api key", code="api_key_not_found")

    async def deactivate(self, caller: Caller, key_id: int) -> asyncpg.Record:
        await self._owned(caller, key_id)
        row = await keys_db.deactivate(self.db, key_id)
        if row is None:
            raise NotFound("no such api key", code="api_key_not_found")
        await self.identify.announce(Revocation.API_KEY, key_id)
        return row

    async def delete(self, caller: Caller, key_id: int) -> None:
        await self._owned(caller, key_id)
        await keys_db.delete(self.db, key_id)
        await self.identify.announce(Revocation.API_KEY, key_id)
