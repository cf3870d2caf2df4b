"""Identifying callers: a JWT access token or an API key -> Caller, served from caches.

Identifying a caller must not cost a database round trip per request, so users,
sessions and API keys are cached in the process for ``auth_cache_ttl`` seconds.
Every change that narrows access (logout, refresh-token reuse, a user disabled or
deleted, a key deactivated or deleted) is published on the ``gateway:auth`` channel;
every gateway process drops the cached entry at once and tells its open sockets
(revocation listeners), so a revoked credential stops working everywhere within
moments, and at the latest after the cache TTL if Redis was unreachable.
Over 300 lines on purpose: the caches and the invalidation that keeps them honest
belong in one place.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import redis.asyncio as aioredis

from fullon_gateway import jsonutil
from fullon_gateway.auth.identity import ADMIN_SCOPES, USER_SCOPES, Caller
from fullon_gateway.auth.revocation import USER_KINDS, Revocation, RevocationListener
from fullon_gateway.auth.tokens import (
    API_KEY_PREFIX,
    API_KEY_SHAPE,
    TokenCodec,
    TokenError,
    looks_like_jwt,
    sha256,
)
from fullon_gateway.errors import Unauthorized
from fullon_gateway.settings import Settings
from fullon_gateway.store import api_keys as keys_db
from fullon_gateway.store import sessions as sessions_db
from fullon_gateway.store import users as users_db

log = logging.getLogger(__name__)

AUTH_CHANNEL = "gateway:auth"
UNKNOWN_KEYS_MAX = 10_000


class PlatformKeys(Protocol):
    """API keys issued by the platform itself (attach mode: store/attach.PlatformKeys)."""

    async def adopt(self, key: str, key_hash: bytes, key_prefix: str) -> Any: ...

    async def still_valid(self, key_id: int) -> bool: ...


LEGACY_KEY_SHAPE = re.compile(re.escape(API_KEY_PREFIX) + r"[A-Za-z0-9_-]{1,200}")


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


DISABLED = "user disabled"  # the reason, also stored as sessions.revoked_why

@dataclass
class _SessionEntry:
    user_id: int
    revoked: bool
    expires_at: dt.datetime
    loaded: float
    why: str | None = None  # the revocation's reason ("user disabled", "logout", ...)


@dataclass
class _KeyEntry:
    key_id: int
    user_id: int
    scopes: frozenset[str]
    is_active: bool
    expires_at: dt.datetime | None
    loaded: float


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Identifier:
    """Who is calling, from a token or key; caches, invalidation and key-use records."""

    def __init__(
        self, settings: Settings, db: asyncpg.Pool, redis: aioredis.Redis, codec: TokenCodec
    ) -> None:
        self.settings = settings
        self.db = db
        self.redis = redis
        self.codec = codec
        self._ttl = settings.auth_cache_ttl
        self._cache_max = settings.auth_cache_max  # entries per cache before it is reset
        self._users: dict[int, _UserEntry] = {}
        self._sessions: dict[uuid.UUID, _SessionEntry] = {}
        self._keys: dict[bytes, _KeyEntry] = {}
        self._unknown_keys: dict[bytes, float] = {}  # hash -> when the lookup missed
        self._key_used: dict[int, dt.datetime] = {}
        self._revocation_listeners: list[RevocationListener] = []
        # Set in attach mode: fullon's keys are accepted on first use, then hashed.
        self.platform_keys: PlatformKeys | None = None

    # -- cross-process invalidation --------------------------------------------------
    def add_revocation_listener(self, listener: RevocationListener) -> None:
        self._revocation_listeners.append(listener)

    async def announce(self, kind: Revocation | str, ident: Any) -> None:
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
        if kind is Revocation.USER:
            # A disabled user's sessions are revoked in the database; a cached entry
            # must not outlive that if the user is re-enabled within the cache TTL.
            for cached in self._sessions.values():
                if cached.user_id == ident:
                    cached.revoked, cached.why = True, DISABLED
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
            row["user_id"], row["revoked_at"] is not None, row["expires_at"], time.monotonic(),
            row["revoked_why"],
        )
        if len(self._sessions) >= self._cache_max:
            # Every login adds a session; without a bound the cache grows for as long
            # as the process lives. The database stays the source of truth.
            self._sessions.clear()
        self._sessions[sid] = entry
        return entry

    async def _key(self, key: str, key_hash: bytes) -> _KeyEntry | None:
        cached = self._keys.get(key_hash)
        if cached is not None and time.monotonic() - cached.loaded < self._ttl:
            return cached
        missed_at = self._unknown_keys.get(key_hash)
        if missed_at is not None and time.monotonic() - missed_at < self._ttl:
            return None
        row = await keys_db.by_hash(self.db, key_hash)
        if self.platform_keys is not None:
            if row is None:
                # A key fullon issued is adopted (stored as a hash) on its first use.
                row = await self.platform_keys.adopt(
                    key, key_hash, key[: len(API_KEY_PREFIX) + 6]
                )
            elif not await self.platform_keys.still_valid(row["key_id"]):
                row = None  # fullon revoked or expired it
        if row is None:
            # Misses live in their own bounded cache, so a flood of made-up keys can
            # neither grow memory nor push real keys out of theirs.
            if len(self._unknown_keys) >= UNKNOWN_KEYS_MAX:
                self._unknown_keys.clear()
            self._unknown_keys[key_hash] = time.monotonic()
            return None
        return self._remember_key(key_hash, row)

    def _remember_key(self, key_hash: bytes, row: Any) -> _KeyEntry:
        entry = _KeyEntry(
            row["key_id"], row["user_id"], frozenset(row["scopes"]), row["is_active"],
            row["expires_at"], time.monotonic(),
        )
        if len(self._keys) >= self._cache_max:
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
        # The user first: a disabled user's sessions are revoked too, and "user
        # disabled" is the reason worth telling.
        user = await self._user(claims.user_id)
        if user is None or not user.is_active:
            raise AuthFailure(DISABLED)
        if session.revoked:
            if session.why == DISABLED:
                # Revoked by a disable: the cached user can still say "active" for a
                # moment after it committed. Ask the database (a rare path) so the
                # reason is "user disabled" while they are, "session revoked" once
                # re-enabled.
                self._users.pop(claims.user_id, None)
                fresh = await self._user(claims.user_id)
                if fresh is None or not fresh.is_active:
                    raise AuthFailure(DISABLED)
            raise AuthFailure("session revoked")
        if session.expires_at <= now():
            raise AuthFailure("token expired")
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

    def _plausible_key(self, key: str) -> bool:
        if API_KEY_SHAPE.fullmatch(key):
            return True
        # fullon's own keys share the prefix; their length is not fixed (at least 10).
        return self.platform_keys is not None and LEGACY_KEY_SHAPE.fullmatch(key) is not None

    async def authenticate_api_key(self, key: str) -> Caller:
        if not self._plausible_key(key):
            # Not a key we (or the platform) could have issued: no hashing, no cache
            # entry, no query.
            raise AuthFailure("invalid token")
        entry = await self._key(key, sha256(key))
        if entry is None or not entry.is_active:
            raise AuthFailure("invalid token")
        if entry.expires_at is not None and entry.expires_at <= now():
            raise AuthFailure("token expired")
        user = await self._user(entry.user_id)
        if user is None or not user.is_active:
            raise AuthFailure("user disabled")
        allowed = ADMIN_SCOPES if user.role == "admin" else USER_SCOPES
        # Remember the use; a background task writes these in one batch.
        self._key_used[entry.key_id] = now()
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

    # -- key usage -------------------------------------------------------------------
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
