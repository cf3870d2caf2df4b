"""Login throttling, shared by every gateway process through Redis.

Login attempts are counted per account and per client address in fixed windows
(SET NX EX + INCR in one MULTI) before the password is checked, and a success takes
its attempt back. Once a counter passes its limit the attempt is a 429 with
Retry-After set to what is left of the window. A successful login resets the
account's counter (not the address's: one good password must not unlock guessing
at every other account from the same address).
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
        """Count this attempt, then raise RateLimited when either counter is past its limit.

        The attempt is counted up front, in one MULTI, before the password is checked:
        counting only after a failed check let a burst of parallel guesses all pass
        the limit before the first failure was recorded.
        """
        acct_key, addr_key = self._keys(account, address)
        async with self._redis.pipeline(transaction=True) as pipe:
            # SET NX EX starts a window; INCR keeps its TTL. (EXPIRE ... NX would need
            # Redis 7, and the embedded redis-server is 6.2.)
            for key in (acct_key, addr_key):
                pipe.set(key, 0, ex=self._window, nx=True)
                pipe.incr(key)
                pipe.ttl(key)
            _, acct, acct_ttl, _, addr, addr_ttl = await pipe.execute()
        if int(acct) > self._per_account:
            raise RateLimited(
                max(acct_ttl, 1), "too many failed logins for this account; try later",
                code="login_throttled",
            )
        if int(addr) > self._per_address:
            raise RateLimited(
                max(addr_ttl, 1), "too many failed logins from this address; try later",
                code="login_throttled",
            )

    async def succeeded(self, account: str, address: str) -> None:
        """Forget the account's failures and take this attempt off the address's count."""
        acct_key, addr_key = self._keys(account, address)
        await self._redis.delete(acct_key)
        await self._redis.eval(_UNCOUNT, 1, addr_key)


# Decrement only a live counter: a DECR after the window expired would create a key
# with no TTL and a negative count, a permanent extra allowance for the address.
_UNCOUNT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""
