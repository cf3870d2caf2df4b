"""The auth service: builds its three parts and gives the app one handle on them.

- ``identify`` (auth/identify.py): who is calling, with its caches and invalidation;
- ``sessions`` (auth/sessions.py): users, login, refresh rotation, revocation;
- ``keys`` (auth/api_keys.py): issuing and withdrawing API keys.

The methods below only delegate, so handlers keep one object to ask.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from fullon_gateway.auth.api_keys import ApiKeys
from fullon_gateway.auth.identify import AUTH_CHANNEL, AuthFailure, Identifier
from fullon_gateway.auth.identity import Caller
from fullon_gateway.auth.passwords import Passwords
from fullon_gateway.auth.revocation import Revocation
from fullon_gateway.auth.sessions import Sessions
from fullon_gateway.auth.throttle import LoginThrottle
from fullon_gateway.auth.tokens import TokenCodec
from fullon_gateway.settings import Settings

__all__ = ["AUTH_CHANNEL", "AuthFailure", "AuthService"]


class AuthService:
    def __init__(self, settings: Settings, db: asyncpg.Pool, redis: aioredis.Redis) -> None:
        assert settings.jwt_secret, "settings must carry a JWT secret"
        self.settings = settings
        self.db = db
        self.codec = TokenCodec(settings.jwt_secret, settings.jwt_algorithm, settings.access_ttl,
                                settings.token_cache_max)
        self.passwords = Passwords(settings)
        self.throttle = LoginThrottle(redis, settings)
        self.identify = Identifier(settings, db, redis, self.codec)
        self.sessions = Sessions(
            settings, db, self.codec, self.passwords, self.throttle, self.identify
        )
        self.keys = ApiKeys(db, self.identify)

    # -- identify ----------------------------------------------------------------------
    async def authenticate(self, token: str) -> Caller:
        return await self.identify.authenticate(token)

    def add_revocation_listener(self, listener: Any) -> None:
        self.identify.add_revocation_listener(listener)

    async def announce(self, kind: Revocation | str, ident: Any) -> None:
        await self.identify.announce(kind, ident)

    def on_auth_message(self, channel: str, data: bytes) -> None:
        self.identify.on_auth_message(channel, data)

    async def on_hub_reconnect(self) -> None:
        await self.identify.on_hub_reconnect()

    async def run_key_usage_flusher(self) -> None:
        await self.identify.run_key_usage_flusher()

    async def flush_key_usage(self) -> None:
        await self.identify.flush_key_usage()

    # -- sessions ----------------------------------------------------------------------
    async def create_user(
        self, email: str, password: str, name: str = "", role: str = "user"
    ) -> asyncpg.Record:
        return await self.sessions.create_user(email, password, name, role)

    async def login(
        self, email: str, password: str, address: str, user_agent: str | None
    ) -> dict[str, Any]:
        return await self.sessions.login(email, password, address, user_agent)

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return await self.sessions.refresh(refresh_token)

    async def revoke_session(self, sid: uuid.UUID, why: str) -> None:
        await self.sessions.revoke_session(sid, why)

    # -- api keys ----------------------------------------------------------------------
    async def create_api_key(
        self, caller: Caller, name: str, scopes: list[str], expires_at: dt.datetime | None
    ) -> dict[str, Any]:
        return await self.keys.create(caller, name, scopes, expires_at)

    async def deactivate_api_key(self, caller: Caller, key_id: int) -> asyncpg.Record:
        return await self.keys.deactivate(caller, key_id)

    async def delete_api_key(self, caller: Caller, key_id: int) -> None:
        await self.keys.delete(caller, key_id)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.identify.flush_key_usage()
