"""Sessions: creating users, logging in, rotating refresh tokens, revoking sessions."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from typing import Any

import asyncpg

from fullon_gateway.auth import passwords
from fullon_gateway.auth.identify import Identifier, now
from fullon_gateway.auth.passwords import Passwords
from fullon_gateway.auth.revocation import Revocation
from fullon_gateway.auth.throttle import LoginThrottle
from fullon_gateway.auth.tokens import TokenCodec, new_refresh_token, sha256
from fullon_gateway.errors import Unauthorized
from fullon_gateway.settings import Settings
from fullon_gateway.store import sessions as sessions_db
from fullon_gateway.store import users as users_db
from fullon_gateway.store.conn import Conn

log = logging.getLogger(__name__)


class Sessions:
    def __init__(
        self,
        settings: Settings,
        db: asyncpg.Pool,
        codec: TokenCodec,
        passwords: Passwords,
        throttle: LoginThrottle,
        identify: Identifier,
    ) -> None:
        self.settings = settings
        self.db = db
        self.codec = codec
        self.passwords = passwords
        self.throttle = throttle
        self.identify = identify

    async def create_user(
        self, email: str, password: str, name: str = "", role: str = "user"
    ) -> asyncpg.Record:
        password_hash = await self.passwords.hash(password)
        return await users_db.create_user(self.db, email.strip(), password_hash, name, role)

    async def _token_pair(
        self, user: Any, sid: uuid.UUID, conn: Conn, session_expires: dt.datetime
    ) -> dict[str, Any]:
        access, _exp = self.codec.issue_access(user["user_id"], user["email"], user["role"], sid)
        refresh = new_refresh_token()
        # Refreshing never outlives the session: a login is good for refresh_ttl at most,
        # however often its tokens are rotated.
        expires = min(now() + dt.timedelta(seconds=self.settings.refresh_ttl), session_expires)
        await sessions_db.add_refresh_token(conn, sha256(refresh), sid, expires)
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.settings.access_ttl,
            "refresh_token": refresh,
            "user": {
                "user_id": user["user_id"],
                "email": user["email"],
                "name": user["name"],
                "role": user["role"],
            },
        }

    async def login(
        self, email: str, password: str, address: str, user_agent: str | None
    ) -> dict[str, Any]:
        await self.throttle.check(email, address)
        try:
            user = await users_db.by_email_with_hash(self.db, email)
        except Exception:
            # No password was checked, so this was no guess: give the attempt back.
            with contextlib.suppress(Exception):
                await self.throttle.uncount(email, address)
            raise
        stored = user["password_hash"] if user else None
        if user is not None and passwords.kind(stored) in ("plaintext", "none"):
            await self._refuse_legacy(user, stored or "", password)
        ok = await self.passwords.verify(stored, password)
        if not ok or user is None:
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        if not user["is_active"]:
            # Same answer as a wrong password would leak nothing new: the password was right.
            raise Unauthorized("this account is disabled", code="user_disabled")
        await self.throttle.succeeded(email, address)
        if self.passwords.needs_rehash(user["password_hash"]):
            rehashed = await self.passwords.hash(password)
            await users_db.set_password_hash(self.db, user["user_id"], rehashed)
        expires = now() + dt.timedelta(seconds=self.settings.refresh_ttl)
        async with self.db.acquire() as conn, conn.transaction():
            sid = await sessions_db.create_session(
                conn, user["user_id"], expires, (user_agent or "")[:200], address
            )
            return await self._token_pair(user, sid, conn, expires)

    async def _refuse_legacy(self, user: Any, stored: str, password: str) -> None:
        """A fullon account whose password was stored unhashed (monolith era): never
        accepted. Its owner, if the password was right, learns it must be reset."""
        log.warning(
            "user %s has a legacy unhashed password and cannot log in until an operator "
            "sets a new one: python -m fullon_gateway reset-password --email <their e-mail>",
            user["user_id"],
        )
        if stored and await self.passwords.matches_plaintext(stored, password):
            raise Unauthorized(
                "this account's password must be reset by an operator before it can log in",
                code="password_reset_required",
            )
        raise Unauthorized("wrong email or password", code="invalid_credentials")

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        token_hash = sha256(refresh_token)
        async with self.db.acquire() as conn, conn.transaction():
            row = await sessions_db.retire_refresh_token(conn, token_hash)
            if row is not None:
                user = await users_db.by_id(conn, row["user_id"])
                if user is None or not user["is_active"]:
                    raise Unauthorized("user disabled", code="user_disabled")
                return await self._token_pair(user, row["session_id"], conn, row["expires_at"])
        known = await sessions_db.refresh_token_session(self.db, token_hash)
        if known is not None and known["used_at"] is not None:
            # A retired token came back: someone holds a copy. Kill the whole session.
            await self.revoke_session(known["session_id"], "refresh token reuse")
            raise Unauthorized(
                "refresh token was already used; the session is revoked",
                code="refresh_token_reused",
            )
        raise Unauthorized("invalid or expired refresh token", code="invalid_refresh_token")

    async def revoke_session(self, sid: uuid.UUID, why: str) -> None:
        await sessions_db.revoke_session(self.db, sid, why)
        await self.identify.announce(Revocation.SESSION, sid)
