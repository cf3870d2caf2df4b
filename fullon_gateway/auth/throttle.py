"""Login throttling, shared by every gateway process through Redis.

Failed logins are counted per account and per client address in fixed windows
(INCR + EXPIRE in one MULTI). Once a counter passes its limit the next attempt is a
429 with Retry-After set to what is left of the window. A successful login resets
the account's counter (not the address's: one good password must not unlock
guessing at every other account from the same address).
"""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis

from fullon_gateway.errors import RateLimited
from fullon_gateway.settings import Settings


class LoginThrottle:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self._redis = redis
        self._prefix = settings.redis_prefix + "gateway:login_fail:"
        self._window = settings.login_window
        self._per_account = settings.login_max_failures
        self._per_address = settings.login_max_failures_per_address

    def _keys(self, account: str, address: str) -> tuple[str, str]:
        # Hash the account so no email address sits in Redis in clear text.
        digest = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:32]
        return self._prefix + "acct:" + digest, self._prefix + "addr:" + address

    async def check(self, account: str, address: str) -> None:
        """Raise RateLimited when either counter is already past its limit."""
        acct_key, addr_key = self._keys(account, address)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in (acct_key, addr_key):
                pipe.get(key)
                pipe.ttl(key)
            acct, acct_ttl, addr, addr_ttl = await pipe.execute()
        if acct is not None and int(acct) >= self._per_account:
            raise RateLimited(
                max(acct_ttl, 1), "too many failed logins for this account; try later",
                code="login_throttled",
            )
        if addr is not None and int(addr) >= self._per_address:
            raise RateLimited(
                max(addr_ttl, 1), "too many failed logins from this address; try later",
                code="login_throttled",
            )

    async def failed(self, account: str, address: str) -> None:
        acct_key, addr_key = self._keys(account, address)
        async with self._redis.pipeline(transaction=True) as pipe:
            # SET NX EX starts the window on the first failure; INCR keeps the TTL.
            # (EXPIRE ... NX would do the same but needs Redis 7.)
            for key in (acct_key, addr_key):
                pipe.set(key, 0, ex=self._window, nx=True)
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, account: str, address: str) -> None:
        acct_key, _ = self._keys(account, address)
        await self._redis.delete(acct_key)
