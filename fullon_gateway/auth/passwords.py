"""Password hashing with argon2id (argon2-cffi), always off the event loop.

A hash costs tens of milliseconds of CPU by design; doing it on the loop would stall
every socket. argon2's C core releases the GIL, so the default thread pool runs
hashes beside the loop.

In front of a fullon platform, stored hashes may also be fullon's bcrypt (``$2b$``,
verified with trailing padding ignored, then replaced by argon2id on login) or, from
the monolith era, plaintext, which is never accepted (``kind`` tells them apart).
"""

from __future__ import annotations

import asyncio
import hmac

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fullon_gateway.settings import Settings

# Verified when an account does not exist, so a miss costs as much as a hit and
# response time does not reveal which emails are registered.
_DUMMY_PASSWORD = "fullon-gateway-dummy-password"  # noqa: S105
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
# bcrypt reads at most 72 bytes; bcrypt 5 raises on more where 4.x (fullon's) ignored them.
_BCRYPT_MAX = 72


def kind(password_hash: str | None) -> str:
    """"argon2", "bcrypt", "plaintext" (monolith-era fullon rows) or "none"."""
    if not password_hash:
        return "none"
    if password_hash.startswith("$argon2"):
        return "argon2"
    if password_hash.rstrip().startswith(BCRYPT_PREFIXES):
        return "bcrypt"
    return "plaintext"


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._dummy_hash = self._hasher.hash(_DUMMY_PASSWORD)

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(None, self._hasher.hash, password)

    def _verify_sync(self, password_hash: str | None, password: str) -> bool:
        if kind(password_hash) == "bcrypt":
            assert password_hash is not None
            try:
                return bcrypt.checkpw(password.encode()[:_BCRYPT_MAX],
                                      password_hash.rstrip().encode())
            except ValueError:  # a malformed hash
                return False
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the stored hash used weaker parameters than today's settings."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when the password matches; with no hash, burn the same time and say no."""
        return await asyncio.get_running_loop().run_in_executor(
            None, self._verify_sync, password_hash, password
        )

    async def matches_plaintext(self, stored: str, password: str) -> bool:
        """Does ``password`` equal a legacy plaintext value? Used only to tell its owner
        that the account needs a reset; such a password never opens a session. Takes
        as long as a real verification, so timing tells nothing either."""
        await self.verify(None, password)
        return hmac.compare_digest(stored.rstrip().encode(), password.encode())
