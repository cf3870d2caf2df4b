"""Replays: the changes a resuming subscription missed, read from the units' histories.

Every published change is appended to its unit's history (``history:<unit>``, entry id
= seq) by the publisher's script. A subscription resuming from ``since`` gets the
entries after it, if the histories still reach back that far; otherwise (trimmed, or
from before the seq counter restarted) it gets a fresh snapshot instead.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from fullon_gateway.stream import frames, names
from fullon_gateway.stream.fanout import Replay, Subscription
from fullon_gateway.stream.kinds import Target


async def read_replay(redis: aioredis.Redis, prefix: str, t: Target,
                      since: int) -> Replay | None:
    """(G, changes after ``since``) if history still covers the gap, else None."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(prefix + names.SEQ_COUNTER)
        pipe.get(prefix + names.SEQ_EPOCH)
        for unit in t.units:
            pipe.xrange(prefix + names.history_key(unit), min=f"{since + 1}-0")
        res = await pipe.execute()
    g, epoch = int(res[0] or 0), int(res[1] or 0)
    # since > g: invented, or from before Redis lost its data while nothing has been
    # published since; since < epoch: from before the counter restarted, so history
    # written before the restart may be gone.
    if since > g or since < epoch:
        return None
    changes: list[frames.Change] = []
    for entries in res[2:]:
        # No entry after since: nothing happened in that unit (a history is never
        # trimmed to nothing). Otherwise the first entry's prev must reach back.
        if entries:
            first = frames.parse_change(entries[0][1][b"m"])
            if first.prev > since:
                return None  # trimmed: changes between since and first are gone
            changes.append(first)
            changes.extend(frames.parse_change(e[1][b"m"]) for e in entries[1:])
    changes.sort(key=lambda c: c.seq or 0)
    return Replay(g, changes)


def replay_fits(sub: Subscription, replay: Replay, with_ack: bool) -> bool:
    """Whether the replay plus the changes buffered meanwhile fit in the socket's queue.

    More than that would close the socket 1013 on every resume, so a replay that does
    not fit is treated as too old: the subscription starts afresh from a snapshot.
    """
    t = sub.target
    wanted = [c for c in replay.changes if (c.seq is None or c.seq > sub.last_seq)
              and t.wants(c.key, c.data)]
    wanted.extend(c for c in sub.buffer or () if c.seq is None or c.seq > replay.seq)
    # Market data conflates on the queue: one slot per key at most.
    needed = len({c.key for c in wanted}) if t.conflated else len(wanted)
    conn = sub.conn
    return needed + with_ack <= conn.queue_limit - conn.queued
