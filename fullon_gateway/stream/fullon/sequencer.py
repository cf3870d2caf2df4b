"""Sequence fullon's writes exactly once: one atomic Lua step per batch of changed keys.

Every gateway process that learns of a write (watcher.py) runs the same script for
the key. Inside Redis, atomically, the script compares the key's current values with
the digests (SHA-1) kept beside them in ``gateway:digest:{key}`` and, for each value
that differs, takes the next ``seq`` from the same counter the publisher uses, appends
the change to the unit's bounded history and publishes it on the unit's channel, then
stores the new digest. The first process to run it does the work; a later one finds
nothing new. So every process delivers the same seq for the same change, no change
gets two, and a process that dies before its step loses nothing: another's step (or
the rescan when a watcher connects) still finds the difference. ADR-005 records why
this and not a lease-elected sequencer.

What a step sees is the key's state, not each command: two writes to one value
between two steps are one change (the newer value), and a value written back to what
it was is none. Lists are queues fullon's consumers drain: only appended elements are
changes, found from the remembered length and tail digest (LLEN, LINDEX, LRANGE only).

The change message (docs/streams.md) carries fullon's value verbatim as a JSON string
(``raw``) plus where it came from (``fkey``, ``field``, ``op``); decode.py turns it
into stream data on the receiving side, where NaN can be read leniently.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from fullon_gateway.stream import names
from fullon_gateway.stream.fullon.sources import Job

DIGEST_PREFIX = "gateway:digest:"  # + fullon key: the digests of its values
PRIMED = "gateway:fullon:primed"  # set once a full rescan has recorded every digest
ORDER_NAMES = "gateway:fullon:order_names"  # exchange names with an order_status:{name} hash
PROCESS_TYPES = "gateway:fullon:process_types"  # types with a process:active:{type} hash
JOBS_PER_CALL = 200  # bounds how long one script holds Redis

# KEYS: 1 seq counter, 2 seq epoch
# ARGV: 1 prefix, 2 history length, 3 '1' on a rescan, 4 list window, then per group of
#       jobs that share mode, key, unit and note (sources.py): those 4, the number of
#       fields n, then n fields (one per job; '' for a job without one). A ticker batch
#       is one group per exchange: one argument per ticker instead of five.
_LUA = names.NEXT_SEQ_LUA + """
local P, hlen, W = ARGV[1], ARGV[2], tonumber(ARGV[4])
-- A rescan before any digest exists records the current state without sequencing it:
-- values that were there before the gateway first ran are state, not changes.
local baseline = ARGV[3] == '1' and redis.call('EXISTS', P .. 'gateway:fullon:primed') == 0
local now = redis.call('TIME')
local ts = string.format('%.3f', tonumber(now[1]) * 1000 + tonumber(now[2]) / 1000)
local prevs, heads, emitted = {}, {}, 0

local function emit(unit, key, field, op, raw)
  if baseline then return end
  local seq = next_seq(KEYS[1], KEYS[2])
  local seq_s = string.format('%d', seq)
  local hist = P .. 'history:' .. unit
  local prev_s = prevs[unit]
  if prev_s == nil then
    prev_s = '0'
    local last = redis.call('XREVRANGE', hist, '+', '-', 'COUNT', 1)
    if last[1] then prev_s = string.match(last[1][1], '^(%d+)') end
  end
  local hk = unit .. '\0' .. key
  local head = heads[hk]
  if head == nil then  -- what every change of this unit and key in this call shares
    head = ',"src":"fullon","unit":' .. cjson.encode(unit) .. ',"fkey":' .. cjson.encode(key)
      .. ',"field":'
    heads[hk] = head
  end
  local msg = '{"seq":' .. seq_s .. ',"prev":' .. prev_s .. head
    .. (field ~= '' and cjson.encode(field) or 'null') .. ',"op":"' .. op
    .. '","ts":' .. ts .. ',"raw":' .. (raw and cjson.encode(raw) or 'null') .. '}'
  redis.call('XADD', hist, 'MAXLEN', '~', hlen, seq_s .. '-0', 'm', msg)
  redis.call('PUBLISH', P .. 'stream:' .. unit, msg)
  prevs[unit] = seq_s
  emitted = emitted + 1
end

local function unit_for(unit, field)
  if string.sub(unit, 1, 1) == '+' then return string.sub(unit, 2) .. field end
  return unit
end

local types = {}  -- per key: this script never changes the type of a fullon key
local i = 5
while i <= #ARGV do
  local mode, key, unit, note = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local nf = tonumber(ARGV[i + 4])
  local first = i + 5
  i = first + nf
  local k, dk = P .. key, P .. 'gateway:digest:' .. key
  local kind = types[k]
  if kind == nil then
    kind = redis.call('TYPE', k)['ok']
    types[k] = kind
  end
  if note ~= '' then
    local set = mode == 'hd' and 'gateway:fullon:process_types' or 'gateway:fullon:order_names'
    redis.call('SADD', P .. set, note)
  end
  for j = first, first + nf - 1 do
    local field = ARGV[j]
    if mode == 'hf' and (kind == 'hash' or kind == 'none') then
      local v = redis.call('HGET', k, field)
      local old = redis.call('HGET', dk, field)
      if v then
        local d = redis.sha1hex(v)
        if d ~= old then
          redis.call('HSET', dk, field, d)
          emit(unit, key, field, 'set', v)
        end
      elseif old then
        redis.call('HDEL', dk, field)
        emit(unit, key, field, 'del', false)
      end
    elseif (mode == 'hh' or mode == 'hd') and (kind == 'hash' or kind == 'none') then
      local old = {}
      local flat = redis.call('HGETALL', dk)
      for j = 1, #flat, 2 do old[flat[j]] = flat[j + 1] end
      local cur = redis.call('HGETALL', k)
      local changed, values = {}, {}
      for j = 1, #cur, 2 do
        local f, v = cur[j], cur[j + 1]
        local d = redis.sha1hex(v)
        if old[f] ~= d then
          redis.call('HSET', dk, f, d)
          changed[#changed + 1] = f
          values[f] = v
        end
        old[f] = nil
      end
      if mode == 'hh' then
        table.sort(changed)  -- a hash has no order: make the seq order deterministic
        for _, f in ipairs(changed) do emit(unit_for(unit, f), key, f, 'set', values[f]) end
      end
      local gone = {}
      for f in pairs(old) do gone[#gone + 1] = f end
      table.sort(gone)
      for _, f in ipairs(gone) do
        redis.call('HDEL', dk, f)
        emit(unit_for(unit, f), key, f, 'del', false)
      end
    elseif mode == 'ls' and (kind == 'list' or kind == 'none') then
      local n = redis.call('LLEN', k)
      local st = redis.call('HMGET', dk, 'n', 't')
      local on, ot = tonumber(st[1]), st[2]
      if n == 0 then
        if on ~= 0 then redis.call('HSET', dk, 'n', 0, 't', '') end
      else
        local from
        if on == nil or on == 0 or not ot or ot == '' then
          from = 0
        elseif n >= on and redis.sha1hex(redis.call('LINDEX', k, on - 1)) == ot then
          from = on  -- appended only (the common case)
        else
          -- drained or trimmed at the head: find the old tail among the newest elements
          local w = math.min(n, W)
          local win = redis.call('LRANGE', k, -w, -1)
          from = n - w
          for j = w, 1, -1 do
            if redis.sha1hex(win[j]) == ot then from = n - w + j; break end
          end
        end
        if n - from > W then from = n - W end
        if from < n then
          local items = redis.call('LRANGE', k, from, -1)
          for _, v in ipairs(items) do emit(unit, key, '', 'add', v) end
          redis.call('HSET', dk, 'n', n, 't', redis.sha1hex(items[#items]))
        elseif on ~= n then
          redis.call('HSET', dk, 'n', n)
        end
      end
    elseif mode == 'sv' and (kind == 'string' or kind == 'none') then
      local v = redis.call('GET', k)
      local old = redis.call('HGET', dk, 'v')
      if v then
        local d = redis.sha1hex(v)
        if d ~= old then
          redis.call('HSET', dk, 'v', d)
          emit(unit, key, '', 'set', v)
        end
      elseif old then
        redis.call('DEL', dk)
        emit(unit, key, '', 'del', false)
      end
    end
  end
end
return emitted
"""


class Sequencer:
    """Runs the step for batches of jobs; returns how many changes were sequenced."""

    def __init__(self, redis: aioredis.Redis, prefix: str = "", history_len: int = 1000,
                 list_window: int | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.history_len = history_len
        # More appended elements than this between two steps: only the newest count.
        self.list_window = list_window or history_len
        self._script = redis.register_script(_LUA)
        self.sequenced = 0  # changes this process sequenced (others' steps not counted)
        self.steps = 0

    async def run(self, jobs: Iterable[Job], rescan: bool = False) -> int:
        # Group by everything but the field, in first-seen order: per key the jobs keep
        # their order, and a batch of tickers of one exchange is one group.
        groups: dict[tuple[str, str, str, str], list[str]] = {}
        for job in jobs:
            groups.setdefault((job.mode, job.key, job.unit, job.note), []).append(job.field)
        total = 0
        args: list[str | int] = []
        count = 0
        for (mode, key, unit, note), fields in groups.items():
            for start in range(0, len(fields), JOBS_PER_CALL):
                part = fields[start:start + JOBS_PER_CALL]
                args.extend((mode, key, unit, note, len(part)))
                args.extend(part)
                count += len(part)
                if count >= JOBS_PER_CALL:
                    total += await self._call(args, rescan)
                    args, count = [], 0
        if args:
            total += await self._call(args, rescan)
        self.sequenced += total
        return total

    async def _call(self, groups: list[str | int], rescan: bool) -> int:
        self.steps += 1
        return int(await self._script(
            keys=[self.prefix + names.SEQ_COUNTER, self.prefix + names.SEQ_EPOCH],
            args=[self.prefix, self.history_len, "1" if rescan else "0", self.list_window,
                  *groups]))

    async def mark_primed(self) -> None:
        """After a full rescan: from now on a key without digests is a new key."""
        await self.redis.set(self.prefix + PRIMED, "1")
