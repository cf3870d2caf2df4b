"""Password hashing with argon2id (argon2-cffi), always off the event loop.

A hash costs tens of milliseconds of CPU by design; doing it on the loop would stall
every socket. argon2's C core releases the GIL, so the default thread pool runs
hashes beside the loop.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fullon_gateway.settings import Settings

# Verified when an account does not exist, so a miss costs as much as a hit and
# response time does not reveal which emails are registered.
_DUMMY_PASSWORD = "fullon-gateway-dummy-password"  # noqa: S105


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
