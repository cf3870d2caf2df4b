"""Login throttling, shared by every gateway process through Redis.

Three counters, in fixed windows (SET NX EX + INCR in one MULTI), counted before the
password is checked:

- an account from one address (``login_max_failures``): a guesser at one account is
  stopped after a few tries, and cannot lock its owner out from elsewhere;
- an account from every address (``login_max_failures_per_account``, higher):
  guessing spread over many addresses is still stopped;
- an address over every account (``login_max_failures_per_address``, much higher):
  a ceiling for one address spraying many accounts, high enough that an office or a
  NAT behind one address is not locked out by a few people mistyping.

Past any limit the attempt is a 429 with Retry-After set to what is left of that
window. A success resets the account's two counters and takes its attempt off the
address's (one good password must not unlock guessing at every other account).
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
        self._per_pair = settings.login_max_failures
        self._per_account = settings.login_max_failures_per_account
        self._per_address = settings.login_max_failures_per_address

    def _keys(self, account: str, address: str) -> tuple[str, str, str]:
        """(address+account, account, address) counter keys."""
        # Hash the account so no email address sits in Redis in clear text.
        digest = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:32]
        return (self._prefix + "pair:" + digest + ":" + address,
                self._prefix + "acct:" + digest, self._prefix + "addr:" + address)

    async def check(self, account: str, address: str) -> None:
        """Count this attempt, then raise RateLimited when either counter is past its limit.

        The attempt is counted up front, in one MULTI, before the password is checked:
        counting only after a failed check let a burst of parallel guesses all pass
        the limit before the first failure was recorded.
        """
        keys = self._keys(account, address)
        async with self._redis.pipeline(transaction=True) as pipe:
            # SET NX EX starts a window; INCR keeps its TTL. (EXPIRE ... NX would need
            # Redis 7, and the embedded redis-server is 6.2.)
            for key in keys:
                pipe.set(key, 0, ex=self._window, nx=True)
                pipe.incr(key)
                pipe.ttl(key)
            results = await pipe.execute()
        limits = (
            (self._per_pair, "too many failed logins for this account; try later"),
            (self._per_account, "too many failed logins for this account; try later"),
            (self._per_address, "too many failed logins from this address; try later"),
        )
        for i, (limit, why) in enumerate(limits):
            count, ttl = int(results[3 * i + 1]), int(results[3 * i + 2])
            if count > limit:
                raise RateLimited(max(ttl, 1), why, code="login_throttled")

    async def succeeded(self, account: str, address: str) -> None:
        """Forget the account's failures and take this attempt off the address's count."""
        pair_key, acct_key, addr_key = self._keys(account, address)
        await self._redis.delete(pair_key, acct_key)
        await self._redis.eval(_UNCOUNT, 1, addr_key)

    async def uncount(self, account: str, address: str) -> None:
        """Take back an attempt that never reached a password check (the user lookup
        failed, e.g. Postgres was down): retries during an outage must not lock the
        account out once it is over."""
        for key in self._keys(account, address):
            await self._redis.eval(_UNCOUNT, 1, key)


# Decrement only a live counter: a DECR after the window expired would create a key
# with no TTL and a negative count, a permanent extra allowance for the address.
_UNCOUNT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""
