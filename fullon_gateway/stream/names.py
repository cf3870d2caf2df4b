"""Every Redis key and channel name the streams use, in one place (docs/streams.md).

Names are WITHOUT ``settings.redis_prefix``: the hub adds it for channels, the
publisher and the snapshot reader add it for keys. Snapshot keys are fullon_cache's
own names so that fullon services and the gateway read the same state.

A *unit* is the smallest thing that has its own history and channel: one exchange's
tickers, one symbol's trades, one bar series, one exchange account's orders or
balances, one bot, the process registry. A subscription covers one or more units.
"""

from __future__ import annotations

SEQ_COUNTER = "gateway:seq"  # string: the global sequence (see publish.py)
SEQ_EPOCH = "gateway:seq_epoch"  # string: first seq since the counter (re)started

# Lua, prepended to every script that takes a seq (publish.py, fullon/sequencer.py), so
# the counter's restart rule lives once: a missing counter (Redis lost its data) restarts
# from the clock in microseconds, above any seq handed out before, and the epoch records
# where it restarted.
NEXT_SEQ_LUA = """
local function next_seq(counter, epoch)
  local seq = redis.call('INCR', counter)
  if seq == 1 then
    local t = redis.call('TIME')
    redis.call('SET', counter, t[1] .. string.format('%06d', tonumber(t[2])))
    seq = redis.call('INCR', counter)
    redis.call('SET', epoch, string.format('%d', seq))
  end
  return seq
end
"""


def unit_channel(unit: str) -> str:
    """The pub/sub channel the publisher announces a unit's changes on."""
    return f"stream:{unit}"


def history_key(unit: str) -> str:
    """The bounded Redis Stream holding a unit's recent changes (entry id = seq-0)."""
    return f"history:{unit}"


def glob_escape(text: str) -> str:
    """Escape Redis glob characters so a name is matched literally in a pattern."""
    out = []
    for ch in text:
        if ch in "*?[]\\":
            out.append("\\")
        out.append(ch)
    return "".join(out)


# -- units -----------------------------------------------------------------------------
def tickers_unit(exchange: str) -> str:
    return f"tickers:{exchange}"


def trades_unit(exchange: str, symbol: str) -> str:
    return f"trades:{exchange}:{symbol}"


def ohlcv_unit(exchange: str, symbol: str, timeframe: str) -> str:
    return f"ohlcv:{exchange}:{symbol}:{timeframe}"


def orders_unit(ex_id: int) -> str:
    return f"orders:{ex_id}"


def accounts_unit(ex_id: int) -> str:
    return f"accounts:{ex_id}"


def bots_unit(bot_id: int) -> str:
    return f"bots:{bot_id}"


PROCESS_UNIT = "process"


# -- snapshot keys (fullon_cache names) -----------------------------------------------
def tickers_key(exchange: str) -> str:
    """Hash: field symbol -> Tick JSON."""
    return f"tickers:{exchange}"


def ohlcv_key(exchange: str, symbol: str, timeframe: str) -> str:
    """Sorted set: score bar timestamp (ms) -> bar JSON; newest ``bars_kept`` kept."""
    return f"ohlcv:{exchange}:{symbol}:{timeframe}"


def order_status_key(ex_id: int) -> str:
    """Hash: field order id -> order JSON."""
    return f"order_status:{ex_id}"


ACCOUNTS_KEY = "accounts"  # hash: field ex_id -> balances JSON
POSITIONS_KEY = "account_positions"  # hash: field ex_id -> positions JSON
BOT_STATUS_KEY = "bot_status"  # hash: field bot_id -> status JSON
# The process registry is fullon's ProcessCache layout: process:data:{id} (record),
# process:active:{type} (id -> heartbeat), process:components (stream/fullon/reads.py).
