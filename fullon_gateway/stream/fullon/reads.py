"""Snapshot reads of fullon's keys that a MULTI cannot do: their key names are only
known inside Redis (the exchange names of ``order_status:{name}`` hashes, the ids in
``process:active:{type}``). Each is one read-only script, so the state it returns and
the global seq it returns with it are one atomic read (stream/service.py's invariant).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from fullon_gateway.stream import names
from fullon_gateway.stream.fullon.sequencer import ORDER_NAMES, PROCESS_TYPES

# ProcessCache's types (FULLON_CACHE.md section 2); others are remembered when seen.
FULLON_PROCESS_TYPES = ("tick", "ohlcv", "bot", "account", "order", "bot_status_service",
                        "crawler", "user_trades_service")

# KEYS: 1 seq counter, 2 order names set; ARGV: 1 prefix, then the ex_ids
# -> {seq, owner, flat HGETALL, owner, flat HGETALL, ...}
_ORDERS = """
local out = {redis.call('GET', KEYS[1]) or '0'}
local function add(owner)
  out[#out + 1] = owner
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. 'order_status:' .. owner)
end
for i = 2, #ARGV do add(ARGV[i]) end
for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do add(name) end
return out
"""

# KEYS: 1 seq counter, 2 process types set; ARGV: 1 prefix, then the known types
# -> {seq, type, id, record or false, ...}
_PROCESSES = """
local out = {redis.call('GET', KEYS[1]) or '0'}
local types, seen = {}, {}
for i = 2, #ARGV do types[#types + 1] = ARGV[i] end
for _, t in ipairs(redis.call('SMEMBERS', KEYS[2])) do types[#types + 1] = t end
for _, t in ipairs(types) do
  if not seen[t] then
    seen[t] = true
    local active = redis.call('HKEYS', ARGV[1] .. 'process:active:' .. t)
    table.sort(active)
    for _, id in ipairs(active) do
      out[#out + 1] = t
      out[#out + 1] = id
      out[#out + 1] = redis.call('GET', ARGV[1] .. 'process:data:' .. id)
    end
  end
end
return out
"""


class FullonReads:
    def __init__(self, redis: aioredis.Redis, prefix: str = "") -> None:
        self.prefix = prefix
        self._orders = redis.register_script(_ORDERS)
        self._processes = redis.register_script(_PROCESSES)

    async def orders(self, ex_ids: tuple[int, ...]) -> tuple[int, list[tuple[str, str, bytes]]]:
        """(seq, [(owner, order id, raw)]) for the accounts' hashes and every named one."""
        p = self.prefix
        out = await self._orders(keys=[p + names.SEQ_COUNTER, p + ORDER_NAMES],
                                 args=[p, *ex_ids])
        rows: list[tuple[str, str, bytes]] = []
        for i in range(1, len(out), 2):
            owner, flat = out[i].decode(), out[i + 1]
            rows.extend((owner, flat[j].decode(), flat[j + 1]) for j in range(0, len(flat), 2))
        return int(out[0]), rows

    async def processes(self) -> tuple[int, list[tuple[str, str, Any]]]:
        """(seq, [(type, id, raw record or None)]) over the whole registry."""
        p = self.prefix
        out = await self._processes(keys=[p + names.SEQ_COUNTER, p + PROCESS_TYPES],
                                    args=[p, *FULLON_PROCESS_TYPES])
        rows = [(out[i].decode(), out[i + 1].decode(), out[i + 2] or None)
                for i in range(1, len(out), 3)]
        return int(out[0]), rows
