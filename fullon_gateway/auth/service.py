"""Authentication: login, refresh rotation, logout, API keys, and identifying callers.

Identifying a caller must not cost a database round trip per request, so users,
sessions and API keys are cached in the process for ``auth_cache_ttl`` seconds.
Every change that narrows access (logout, refresh-token reuse, a user disabled or
deleted, a key deactivated or deleted) is published on the ``gateway:auth`` channel;
every gateway process drops the cached entry at once and tells its open sockets
(revocation listeners), so a revoked credential stops working everywhere within
moments, and at the latest after the cache TTL if Redis was unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from fullon_gateway import jsonutil
from fullon_gateway.auth.identity import ADMIN_SCOPES, USER_SCOPES, Caller
from fullon_gateway.auth.passwords import Passwords
from fullon_gateway.auth.revocation import USER_KINDS, Revocation, RevocationListener
from fullon_gateway.auth.throttle import LoginThrottle
from fullon_gateway.auth.tokens import (
    API_KEY_PREFIX,
    API_KEY_SHAPE,
    TokenCodec,
    TokenError,
    looks_like_jwt,
    new_api_key,
    new_refresh_token,
    sha256,
)
from fullon_gateway.errors import Forbidden, Invalid, NotFound, Unauthorized
from fullon_gateway.settings import Settings
from fullon_gateway.store import api_keys as keys_db
from fullon_gateway.store import sessions as sessions_db
from fullon_gateway.store import users as users_db

log = logging.getLogger(__name__)

AUTH_CHANNEL = "gateway:auth"
CACHE_MAX = 100_000  # entries per identity cache (sessions, api keys) before it is reset
UNKNOWN_KEYS_MAX = 10_000


class AuthFailure(TokenError):
    """A credential was refused; ``reason`` is the 1008 close reason for sockets."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def http(self) -> Unauthorized:
        return Unauthorized(self.reason, code=self.reason.replace(" ", "_"))


@dataclass
class _UserEntry:
    user_id: int
    email: str
    name: str
    role: str
    is_active: bool
    loaded: float


@dataclass
class _SessionEntry:
    user_id: int
    revoked: bool
    expires_at: dt.datetime
    loaded: float


@dataclass
class _KeyEntry:
    key_id: int
    user_id: int
    scopes: frozenset[str]
    is_active: bool
    expires_at: dt.datetime | None
    loaded: float


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class AuthService:
    def __init__(self, settings: Settings, db: asyncpg.Pool, redis: aioredis.Redis) -> None:
        assert settings.jwt_secret, "settings must carry a JWT secret"
        self.settings = settings
        self.db = db
        self.redis = redis
        self.codec = TokenCodec(settings.jwt_secret, settings.jwt_algorithm, settings.access_ttl)
        self.passwords = Passwords(settings)
        self.throttle = LoginThrottle(redis, settings)
        self._ttl = settings.auth_cache_ttl
        self._users: dict[int, _UserEntry] = {}
        self._sessions: dict[uuid.UUID, _SessionEntry] = {}
        self._keys: dict[bytes, _KeyEntry] = {}
        self._unknown_keys: dict[bytes, float] = {}  # hash -> when the lookup missed
        self._key_used: dict[int, dt.datetime] = {}
        self._revocation_listeners: list[RevocationListener] = []

    # -- cross-process invalidation --------------------------------------------------
    def add_revocation_listener(self, listener: RevocationListener) -> None:
        self._revocation_listeners.append(listener)

    async def announce(self, kind: Revocation, ident: Any) -> None:
        """Tell every gateway process (this one included) that ``kind`` ``ident`` changed."""
        kind = Revocation(kind)  # a plain string names the same kind
        self._apply(kind, ident)
        payload = jsonutil.dumps({"kind": kind, "id": str(ident)})
        try:
            await self.redis.publish(self.settings.redis_prefix + AUTH_CHANNEL, payload)
        except (aioredis.RedisError, OSError) as exc:
            # Other processes fall back to the cache TTL; this one already applied it.
            log.warning("could not publish auth invalidation: %r", exc)

    def on_auth_message(self, _channel: str, data: bytes) -> None:
        """Hub listener for ``gateway:auth``."""
        try:
            msg = jsonutil.loads(data)
            kind = Revocation(msg["kind"])
            ident = kind.parse_id(msg["id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored malformed auth invalidation")
            return
        self._apply(kind, ident)

    def _apply(self, kind: Revocation, ident: Any) -> None:
        if kind in USER_KINDS:
            self._users.pop(ident, None)
        elif kind is Revocation.SESSION:
            entry = self._sessions.get(ident)
            if entry is not None:
                entry.revoked = True
        elif kind is Revocation.API_KEY:
            for key_hash, key in list(self._keys.items()):
                if key is not None and key.key_id == ident:
                    del self._keys[key_hash]
        for listener in list(self._revocation_listeners):
            try:
                listener(kind, ident)
            except Exception:
                log.exception("revocation listener failed")

    def clear_caches(self) -> None:
        """Forget everything cached (after Redis was unreachable, messages may be lost)."""
        self._users.clear()
        self._sessions.clear()
        self._keys.clear()
        self._unknown_keys.clear()

    async def on_hub_reconnect(self) -> None:
        self.clear_caches()

    # -- cached lookups ---------------------------------------------------------------
    async def _user(self, user_id: int) -> _UserEntry | None:
        entry = self._users.get(user_id)
        if entry is not None and time.monotonic() - entry.loaded < self._ttl:
            return entry
        row = await users_db.by_id(self.db, user_id)
        if row is None:
            self._users.pop(user_id, None)
            return None
        entry = _UserEntry(
            row["user_id"], row["email"], row["name"], row["role"], row["is_active"],
            time.monotonic(),
        )
        self._users[user_id] = entry
        return entry

    async def _session(self, sid: uuid.UUID) -> _SessionEntry | None:
        entry = self._sessions.get(sid)
        if entry is not None and (entry.revoked or time.monotonic() - entry.loaded < self._ttl):
            return entry
        row = await sessions_db.session_state(self.db, sid)
        if row is None:
            return None
        entry = _SessionEntry(
            row["user_id"], row["revoked_at"] is not None, row["expires_at"], time.monotonic()
        )
        if len(self._sessions) >= CACHE_MAX:
            # Every login adds a session; without a bound the cache grows for as long
            # as the process lives. The database stays the source of truth.
            self._sessions.clear()
        self._sessions[sid] = entry
        return entry

    async def _key(self, key_hash: bytes) -> _KeyEntry | None:
        cached = self._keys.get(key_hash)
        if cached is not None and time.monotonic() - cached.loaded < self._ttl:
            return cached
        missed_at = self._unknown_keys.get(key_hash)
        if missed_at is not None and time.monotonic() - missed_at < self._ttl:
            return None
        row = await keys_db.by_hash(self.db, key_hash)
        if row is None:
            # Misses live in their own bounded cache, so a flood of made-up keys can
            # neither grow memory nor push real keys out of theirs.
            if len(self._unknown_keys) >= UNKNOWN_KEYS_MAX:
                self._unknown_keys.clear()
            self._unknown_keys[key_hash] = time.monotonic()
            return None
        entry = _KeyEntry(
            row["key_id"], row["user_id"], frozenset(row["scopes"]), row["is_active"],
            row["expires_at"], time.monotonic(),
        )
        if len(self._keys) >= CACHE_MAX:
            self._keys.clear()
        self._unknown_keys.clear()
        self._keys[key_hash] = entry
        return entry

    # -- identifying callers ----------------------------------------------------------
    async def authenticate(self, token: str) -> Caller:
        """A JWT access token or an API key -> Caller, or AuthFailure with a reason."""
        token = token.strip()
        if not token:
            raise AuthFailure("missing token")
        if not (token.isascii() and token.isprintable()):
            # Tokens and keys are base64url text. Raw header bytes arrive as surrogate
            # escapes, which would blow up the hashing and decoding further on.
            raise AuthFailure("invalid token")
        if token.startswith(API_KEY_PREFIX):
            return await self.authenticate_api_key(token)
        if not looks_like_jwt(token) or len(token) > 4096:
            raise AuthFailure("invalid token")
        return await self.authenticate_jwt(token)

    async def authenticate_jwt(self, token: str) -> Caller:
        try:
            claims = self.codec.decode_access(token)
        except TokenError as exc:
            raise AuthFailure(str(exc)) from None
        session = await self._session(claims.sid)
        if session is None or session.user_id != claims.user_id:
            raise AuthFailure("invalid token")
        if session.revoked:
            raise AuthFailure("session revoked")
        if session.expires_at <= _now():
            raise AuthFailure("token expired")
        user = await self._user(claims.user_id)
        if user is None or not user.is_active:
            raise AuthFailure("user disabled")
        return Caller(
            user_id=user.user_id,
            email=user.email,
            name=user.name,
            role=user.role,  # the current role, not the one frozen into the token
            scopes=ADMIN_SCOPES if user.role == "admin" else USER_SCOPES,
            kind="jwt",
            session_id=claims.sid,
            expires_at=claims.exp,
        )

    async def authenticate_api_key(self, key: str) -> Caller:
        if not API_KEY_SHAPE.fullmatch(key):
            # Not a key we could have issued: no hashing, no cache entry, no query.
            raise AuthFailure("invalid token")
        entry = await self._key(sha256(key))
        if entry is None or not entry.is_active:
            raise AuthFailure("invalid token")
        if entry.expires_at is not None and entry.expires_at <= _now():
            raise AuthFailure("token expired")
        user = await self._user(entry.user_id)
        if user is None or not user.is_active:
            raise AuthFailure("user disabled")
        allowed = ADMIN_SCOPES if user.role == "admin" else USER_SCOPES
        # Remember the use; a background task writes these in one batch.
        self._key_used[entry.key_id] = _now()
        expires = int(entry.expires_at.timestamp()) if entry.expires_at else None
        return Caller(
            user_id=user.user_id,
            email=user.email,
            name=user.name,
            role=user.role,
            scopes=entry.scopes & allowed,
            kind="api_key",
            api_key_id=entry.key_id,
            expires_at=expires,
        )

    async def flush_key_usage(self) -> None:
        used, self._key_used = self._key_used, {}
        if used:
            await keys_db.touch_many(self.db, used)

    async def run_key_usage_flusher(self) -> None:
        while True:
            await asyncio.sleep(self.settings.api_key_touch_interval)
            try:
                await self.flush_key_usage()
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("could not record api key usage: %r", exc)

    # -- users ---------------------------------------------------------------------
    async def create_user(
        self, email: str, password: str, name: str = "", role: str = "user"
    ) -> asyncpg.Record:
        password_hash = await self.passwords.hash(password)
        return await users_db.create_user(self.db, email.strip(), password_hash, name, role)

    # -- sessions ------------------------------------------------------------------
    async def _token_pair(
        self, user: Any, sid: uuid.UUID, conn: Any, session_expires: dt.datetime
    ) -> dict[str, Any]:
        access, _exp = self.codec.issue_access(user["user_id"], user["email"], user["role"], sid)
        refresh = new_refresh_token()
        # Refreshing never outlives the session: a login is good for refresh_ttl at most,
        # however often its tokens are rotated.
        expires = min(_now() + dt.timedelta(seconds=self.settings.refresh_ttl), session_expires)
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
        user = await users_db.by_email_with_hash(self.db, email)
        ok = await self.passwords.verify(user["password_hash"] if user else None, password)
        if not ok or user is None:
            await self.throttle.failed(email, address)
            raise Unauthorized("wrong email or password", code="invalid_credentials")
        if not user["is_active"]:
            # Same answer as a wrong password would leak nothing new: the password was right.
            raise Unauthorized("this account is disabled", code="user_disabled")
        await self.throttle.succeeded(email, address)
        if self.passwords.needs_rehash(user["password_hash"]):
            rehashed = await self.passwords.hash(password)
            await users_db.set_password_hash(self.db, user["user_id"], rehashed)
        expires = _now() + dt.timedelta(seconds=self.settings.refresh_ttl)
        async with self.db.acquire() as conn, conn.transaction():
            sid = await sessions_db.create_session(
                conn, user["user_id"], expires, (user_agent or "")[:200], address
            )
            return await self._token_pair(user, sid, conn, expires)

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
        await self.announce(Revocation.SESSION, sid)

    # -- api keys ------------------------------------------------------------------
    async def create_api_key(
        self, caller: Caller, name: str, scopes: list[str], expires_at: dt.datetime | None
    ) -> dict[str, Any]:
        allowed = ADMIN_SCOPES if caller.is_admin else USER_SCOPES
        refused = sorted(set(scopes) - allowed)
        if refused:
            raise Forbidden(
                f"scopes {', '.join(refused)} need an admin account", code="scope_not_allowed"
            )
        if expires_at is not None and expires_at <= _now():
            raise Invalid("expires_at must be in the future",
                          fields={"expires_at": ["must be in the future"]})
        key = new_api_key()
        row = await keys_db.create_key(
            self.db, caller.user_id, name, sha256(key), key[: len(API_KEY_PREFIX) + 6],
            sorted(set(scopes)), expires_at,
        )
        return {**dict(row), "key": key}

    async def _owned_key(self, caller: Caller, key_id: int) -> None:
        owner = await keys_db.owner_of(self.db, key_id)
        if owner is None or not caller.can_see(owner):
            raise NotFound("no such api key", code="api_key_not_found")

    async def deactivate_api_key(self, caller: Caller, key_id: int) -> asyncpg.Record:
        await self._owned_key(caller, key_id)
        row = await keys_db.deactivate(self.db, key_id)
        if row is None:
            raise NotFound("no such api key", code="api_key_not_found")
        await self.announce(Revocation.API_KEY, key_id)
        return row

    async def delete_api_key(self, caller: Caller, key_id: int) -> None:
        await self._owned_key(caller, key_id)
        await keys_db.delete(self.db, key_id)
        await self.announce(Revocation.API_KEY, key_id)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush_key_usage()
