"""Access tokens (JWT) and opaque refresh tokens and API keys.

Access tokens are checked for algorithm (only the configured HMAC one: this refuses
``alg: none`` and RS/HS confusion), signature, ``typ``, expiry and required claims.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

API_KEY_PREFIX = "fullon_ak_"
REQUIRED_CLAIMS = ["sub", "user_id", "role", "sid", "iat", "exp", "jti", "typ"]


class TokenError(Exception):
    """Why a token was refused: ``invalid token`` or ``token expired``."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    email: str
    role: str
    sid: uuid.UUID
    exp: int
    jti: str


class TokenCodec:
    # Verified tokens by their exact text. Clients repeat the same token for minutes,
    # and PyJWT's decode was a third of the CPU of an authenticated request. Only
    # fully verified tokens enter, keyed by the whole string (signature included), so a
    # hit proves what a fresh decode would; expiry is still checked on every hit.
    def __init__(self, secret: str, algorithm: str, access_ttl: int,
                 cache_size: int = 10_000) -> None:
        self._cache_size = cache_size
        self._secret = secret
        self._algorithm = algorithm
        self.access_ttl = access_ttl
        self._verified: dict[str, AccessClaims] = {}

    def issue_access(self, user_id: int, email: str, role: str, sid: uuid.UUID) -> tuple[str, int]:
        now = int(time.time())
        exp = now + self.access_ttl
        claims = {
            "sub": str(user_id),
            "user_id": user_id,
            "email": email,
            "role": role,
            "sid": str(sid),
            "iat": now,
            "exp": exp,
            "jti": secrets.token_urlsafe(12),
            "typ": "access",
        }
        return jwt.encode(claims, self._secret, algorithm=self._algorithm), exp

    def decode_access(self, token: str) -> AccessClaims:
        cached = self._verified.get(token)
        if cached is not None:
            if cached.exp > time.time():
                return cached
            del self._verified[token]
            raise TokenError("token expired")
        claims = self._decode(token)
        if len(self._verified) >= self._cache_size:
            # Drop the oldest entry (dicts keep insertion order).
            del self._verified[next(iter(self._verified))]
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> AccessClaims:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.PyJWTError:
            raise TokenError("invalid token") from None
        if claims.get("typ") != "access":
            raise TokenError("invalid token")
        try:
            user_id = int(claims["user_id"])
            if str(user_id) != claims["sub"] or claims["role"] not in ("user", "admin"):
                raise ValueError
            return AccessClaims(
                user_id=user_id,
                email=str(claims.get("email", "")),
                role=claims["role"],
                sid=uuid.UUID(str(claims["sid"])),
                exp=int(claims["exp"]),
                jti=str(claims["jti"]),
            )
        except (ValueError, TypeError, KeyError):
            raise TokenError("invalid token") from None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


# What new_api_key() makes: the prefix and 32 random bytes in unpadded base64url.
API_KEY_SHAPE = re.compile(re.escape(API_KEY_PREFIX) + r"[A-Za-z0-9_-]{43}")


def sha256(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith(API_KEY_PREFIX)
