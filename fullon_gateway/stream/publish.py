"""The publisher trading services call to put live state into the gateway.

Every change goes through one Lua script, so these three happen atomically (nobody
can observe one without the others):

1. the snapshot is written where fullon_cache keeps it (``tickers:{exchange}``,
   ``order_status:{ex_id}``, ``accounts``, ``account_positions``, ``bot_status``,
   ProcessCache's ``process:data:{id}`` / ``process:active:{type}`` /
   ``process:components``, ``ohlcv:{exchange}:{symbol}:{tf}``), in fullon's shapes;
2. the change is appended to the unit's bounded history, a Redis Stream
   ``history:{unit}`` trimmed with ``MAXLEN ~ history_len``;
3. the change is published on ``stream:{unit}`` with its ``seq``.

``seq`` is one counter for the whole Redis (``gateway:seq``), so it grows per unit and
also across the units a subscription spans (all of a user's accounts), and it is the
history entry id (``{seq}-0``), so resuming is an ``XRANGE`` from ``since``. When the
counter is missing (first publish, or Redis lost its data) it restarts from the
server clock in microseconds: seq keeps growing across a Redis restart without
persistence, and stays below 2**53 so JavaScript clients read it exactly; the first
seq of the restarted counter is kept in ``gateway:seq_epoch``, so a reader knows that
a ``since`` older than it may have lost history with the old data. Each entry
also carries ``prev``, the unit's previous seq, so a reader can tell "nothing happened"
from "history was trimmed". docs/streams.md lists every key and channel.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from fullon_gateway import jsonutil
from fullon_gateway.stream import names
from fullon_gateway.stream.fullon.sequencer import DIGEST_PREFIX, PROCESS_TYPES

# KEYS: 1 seq counter, 2 history stream, 3 channel, 4 snapshot key, 5 digest key
#       (fullon/sequencer.py: the watcher must find this write already sequenced),
#       6 seq epoch, 7 process active hash, 8 process components hash, 9 process types
# ARGV: 1 mode (hset|zbar|proc|none), 2 field or bar score, 3 snapshot value,
#       4 message tail (JSON object text without its opening brace), 5 history length,
#       6 bars kept, 7 process component, 8 heartbeat time, 9 process type
_LUA = names.NEXT_SEQ_LUA + """
local seq = next_seq(KEYS[1], KEYS[6])
local seq_s = string.format('%d', seq)
local prev_s = '0'
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if last[1] then prev_s = string.match(last[1][1], '^(%d+)') end
local mode = ARGV[1]
if mode == 'hset' then
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
  redis.call('HSET', KEYS[5], ARGV[2], redis.sha1hex(ARGV[3]))
elseif mode == 'zbar' then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], ARGV[2], ARGV[2])
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[6]) + 1))
elseif mode == 'proc' then
  -- fullon's ProcessCache layout: the record (24 h), the active entry, the component
  redis.call('SET', KEYS[4], ARGV[3], 'EX', 86400)
  redis.call('HSET', KEYS[5], 'v', redis.sha1hex(ARGV[3]))
  redis.call('HSET', KEYS[7], ARGV[2], ARGV[8])
  redis.call('HSET', KEYS[8], ARGV[7], ARGV[2])
  redis.call('SADD', KEYS[9], ARGV[9])
end
local msg = '{"seq":' .. seq_s .. ',"prev":' .. prev_s .. ',' .. ARGV[4]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], seq_s .. '-0', 'm', msg)
redis.call('PUBLISH', KEYS[3], msg)
return seq_s
"""

BARS_KEPT = 500


class Publisher:
    """Write snapshot + history + publish for one change; returns the change's seq.

    Snapshots are written in fullon_cache's own shapes (FULLON_CACHE.md section 3), so
    fullon's readers keep working after a service switches to this publisher, and the
    digests the fullon watcher compares with are updated in the same step, so the
    watcher never sequences a published change a second time.
    """

    def __init__(self, redis: aioredis.Redis, prefix: str = "", history_len: int = 1000) -> None:
        self.redis = redis
        self.prefix = prefix
        self.history_len = history_len
        self._script = redis.register_script(_LUA)

    async def _publish(
        self, stream: str, unit: str, key: str | None, data: Mapping[str, Any],
        mode: str = "none", snapshot_key: str = "", field: str = "",
        snapshot: bytes | None = None, component: str = "", heartbeat: str = "",
        client: Any = None,
    ) -> int:
        p = self.prefix
        body = jsonutil.dumps({
            "stream": stream, "unit": unit, "key": key, "ts": time.time() * 1000, "data": data,
        })
        ptype = str(data.get("process_type", "")) if mode == "proc" else ""
        seq = await self._script(
            keys=[p + names.SEQ_COUNTER, p + names.history_key(unit),
                  p + names.unit_channel(unit), p + (snapshot_key or names.SEQ_COUNTER),
                  p + DIGEST_PREFIX + (snapshot_key or names.SEQ_COUNTER),
                  p + names.SEQ_EPOCH, p + f"process:active:{ptype}",
                  p + "process:components", p + PROCESS_TYPES],
            args=[mode, field, snapshot if snapshot is not None else b"", body[1:],
                  self.history_len, BARS_KEPT, component, heartbeat, ptype],
            client=client,
        )
        return 0 if client is not None else int(seq)

    # -- market data ---------------------------------------------------------------
    async def ticker(self, exchange: str, symbol: str, tick: Mapping[str, Any],
                     pipeline: Any = None) -> int:
        """A ticker: HSET tickers:{exchange} symbol <Tick JSON>. With ``pipeline`` (a
        non-transactional redis pipeline) the change is queued there and 0 returned: a
        service sending many tickers at once executes the pipeline itself."""
        data = {**tick, "exchange": exchange, "symbol": symbol}
        return await self._publish(
            "tickers", names.tickers_unit(exchange), symbol, data, "hset",
            names.tickers_key(exchange), symbol, jsonutil.dumps(data), client=pipeline,
        )

    async def trade(self, exchange: str, symbol: str, trade: Mapping[str, Any]) -> int:
        """A public trade: history only (the snapshot is the history's tail). fullon's
        ``trades:*`` lists are queues its consumers drain, so nothing is pushed there."""
        data = {**trade, "exchange": exchange, "symbol": symbol}
        return await self._publish("trades", names.trades_unit(exchange, symbol), None, data)

    async def ohlcv(self, exchange: str, symbol: str, timeframe: str,
                    bar: Mapping[str, Any]) -> int:
        """A bar (new or updated): replaces the bar with the same ``timestamp`` (epoch ms)."""
        ts = int(bar["timestamp"])
        data = {**bar, "exchange": exchange, "symbol": symbol, "timeframe": timeframe}
        return await self._publish(
            "ohlcv", names.ohlcv_unit(exchange, symbol, timeframe), str(ts), data, "zbar",
            names.ohlcv_key(exchange, symbol, timeframe), str(ts), jsonutil.dumps(data),
        )

    # -- private data --------------------------------------------------------------
    async def order(self, ex_id: int, order: Mapping[str, Any]) -> int:
        """An order's status: HSET order_status:{ex_id} <order_id> <order JSON>."""
        order_id = str(order["order_id"])
        data = {**order, "ex_id": ex_id, "order_id": order_id}
        return await self._publish(
            "orders", names.orders_unit(ex_id), order_id, data, "hset",
            names.order_status_key(ex_id), order_id, jsonutil.dumps(data),
        )

    async def balances(self, ex_id: int, balances: Mapping[str, Any]) -> int:
        """An account: HSET accounts <ex_id> <{currency: {total, free, used}, ..., date}>
        (fullon's upsert_user_account adds ``date``, ISO now)."""
        stored = {**balances, "date": balances.get("date") or _fullon_now()}
        data = {"ex_id": ex_id, "kind": "balances", "balances": stored}
        return await self._publish(
            "accounts", names.accounts_unit(ex_id), f"balances:{ex_id}", data, "hset",
            names.ACCOUNTS_KEY, str(ex_id), jsonutil.dumps(stored),
        )

    async def positions(self, ex_id: int, positions: Any) -> int:
        """An account's positions: HSET account_positions <ex_id> <JSON object keyed by
        symbol, each ``{cost, volume, fee, count, price, timestamp}``, plus the root
        ``timestamp``> - fullon's upsert_positions shape. A list of position dicts
        (each with ``symbol``; ``size`` stands for ``volume``) is converted to it."""
        stored = fullon_positions(positions)
        data = {"ex_id": ex_id, "kind": "positions", "positions": stored}
        return await self._publish(
            "accounts", names.accounts_unit(ex_id), f"positions:{ex_id}", data, "hset",
            names.POSITIONS_KEY, str(ex_id), jsonutil.dumps(stored),
        )

    async def bot_status(self, bot_id: int, status: Mapping[str, Any]) -> int:
        """A bot's status: HSET bot_status <bot_id> <status JSON>; like fullon's
        update_bot, every dict value (a feed's status) gets ``timestamp`` = now."""
        now = _fullon_now()
        stored = {k: ({**v, "timestamp": now} if isinstance(v, dict) else v)
                  for k, v in status.items()}
        data = {**stored, "bot_id": bot_id}
        return await self._publish(
            "bots", names.bots_unit(bot_id), str(bot_id), data, "hset",
            names.BOT_STATUS_KEY, str(bot_id), jsonutil.dumps(stored),
        )

    async def process(self, process_type: str, process_id: str, status: str = "running",
                      message: str = "", **extra: Any) -> int:
        """A process heartbeat in fullon's ProcessCache layout: the record at
        ``process:data:{id}`` (24 h TTL), ``process:active:{type}`` {id} = heartbeat,
        ``process:components`` {component} = id."""
        now = _fullon_now()
        component = str(extra.pop("component", process_id))
        data = {**extra, "process_id": process_id, "process_type": process_type,
                "component": component, "params": dict(extra), "status": status,
                "message": message, "updated_at": now, "heartbeat": now}
        return await self._publish(
            "process", names.PROCESS_UNIT, process_id, data, "proc",
            f"process:data:{process_id}", process_id, jsonutil.dumps(data),
            component=component, heartbeat=now,
        )


def fullon_positions(positions: Any) -> dict[str, Any]:
    """Positions in fullon's stored shape (a dict keyed by symbol + root timestamp)."""
    if isinstance(positions, Mapping):
        out = dict(positions)
    else:
        out = {}
        for pos in positions or ():
            item = {k: v for k, v in pos.items() if k != "symbol"}
            if "volume" not in item and "size" in item:
                item["volume"] = item["size"]
            item.setdefault("timestamp", time.time())
            out[str(pos["symbol"])] = item
    out["timestamp"] = _fullon_now()
    return out


def _fullon_now() -> str:
    """fullon_cache's own timestamps: ``datetime.now(UTC).isoformat()`` (+00:00)."""
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat()
