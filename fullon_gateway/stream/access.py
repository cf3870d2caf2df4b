"""Who may see which private unit: the ownership map, cached per user in the process.

orders{ex_id} and accounts{ex_id} belong to ``exchanges.user_id``; bots{bot_id} to
``bots.user_id``. The map is read from Postgres once per user and dropped when an
``ownership`` announcement for that user arrives (AuthService, over Redis, from any
gateway process). A generation counter keeps a read that raced an invalidation from
being cached: otherwise a transferred account could stay visible to its old owner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg

ADMIN = -1  # cache slot for "every id" (admins see all)


@dataclass(frozen=True)
class Owned:
    ex_ids: frozenset[int]
    bot_ids: frozenset[int]
    loaded: float = 0.0


class Ownership:
    def __init__(self, db: asyncpg.Pool, ttl: float = 30.0) -> None:
        self.db = db
        # Announcements usually come first; the TTL bounds the damage of a lost one.
        self.ttl = ttl
        self._cache: dict[int, Owned] = {}
        self._generation = 0

    def invalidate(self, user_id: int | None = None) -> None:
        """Forget a user's map (and the admin one, which includes it); None: forget all."""
        self._generation += 1
        if user_id is None:
            self._cache.clear()
        else:
            self._cache.pop(user_id, None)
        self._cache.pop(ADMIN, None)

    async def of(self, user_id: int, is_admin: bool) -> Owned:
        slot = ADMIN if is_admin else user_id
        owned = self._cache.get(slot)
        if owned is not None and time.monotonic() - owned.loaded < self.ttl:
            return owned
        generation = self._generation
        async with self.db.acquire() as conn:
            if is_admin:
                ex = await conn.fetch("SELECT ex_id FROM exchanges")
                bots = await conn.fetch("SELECT bot_id FROM bots")
            else:
                ex = await conn.fetch("SELECT ex_id FROM exchanges WHERE user_id = $1", user_id)
                bots = await conn.fetch("SELECT bot_id FROM bots WHERE user_id = $1", user_id)
        owned = Owned(frozenset(r["ex_id"] for r in ex), frozenset(r["bot_id"] for r in bots),
                      time.monotonic())
        if generation == self._generation:
            self._cache[slot] = owned
        return owned
