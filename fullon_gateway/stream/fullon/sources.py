"""fullon_cache's key names -> the sequencer job that reads them and the unit it feeds.

Names here are fullon's own (FULLON_CACHE.md section 2), WITHOUT the gateway's
``redis_prefix``: the watcher strips it from what Redis reports and the sequencer adds
it back to every command. A *job* is one key (and, for tickers, one field) whose
current value the sequencer compares with the digests kept beside it.

Modes:
- ``hf``: one field of a hash (a ticker: fullon names the symbol in its channel);
- ``hh``: a whole hash, every field compared (order_status, accounts, bot_status...);
- ``hd``: a whole hash whose removals only are changes (process:active:{type});
- ``ls``: a list, only appended elements are changes (trades, ohlcv), read with
  LLEN/LINDEX/LRANGE, never consumed;
- ``sv``: a string value (process:data:{id}).

A unit starting with ``+`` is a per-field unit: the field is appended to it
(``+accounts:`` with field ``3`` is unit ``accounts:3``).
"""

from __future__ import annotations

from typing import NamedTuple

# Units the gateway's own publisher does not use: fullon keeps these in shapes of its own.
NAMED_ORDERS_UNIT = "fullon:orders:named"  # order_status:{exchange name}, routed per order
PROCESS_UNIT = "process"


class Job(NamedTuple):
    mode: str
    key: str  # unprefixed fullon key
    unit: str
    field: str = ""
    note: str = ""  # a name to remember: an order hash's exchange, a process type


def trades_unit(exchange: str, symbol: str) -> str:
    """fullon's trades queue of ``symbol`` (the key strips '/': trades:kraken:BTCUSD)."""
    return f"fullon:trades:{exchange}:{symbol.replace('/', '')}"


def ohlcv_unit(symbol: str, timeframe: str) -> str:
    """fullon's bar list (no exchange in the key: ohlcv:{symbol}:{tf})."""
    return f"fullon:ohlcv:{symbol}:{timeframe}"


def trades_key(exchange: str, symbol: str) -> str:
    return f"trades:{exchange}:{symbol.replace('/', '')}"


def ohlcv_key(symbol: str, timeframe: str) -> str:
    return f"ohlcv:{symbol}:{timeframe}"


def ticker_job(exchange: str, symbol: str) -> Job:
    return Job("hf", f"tickers:{exchange}", f"tickers:{exchange}", symbol)


def job_for(key: str) -> Job | None:
    """The job that reads fullon key ``key``, or None when it is not a streamed key."""
    if key.startswith("tickers:"):
        return Job("hh", key, key)  # a deletion or a rescan: compare every symbol
    if key.startswith("order_status:"):
        owner = key[len("order_status:"):]
        if not owner:
            return None
        if owner.isdigit():
            return Job("hh", key, f"orders:{int(owner)}")
        return Job("hh", key, NAMED_ORDERS_UNIT, note=owner)
    if key == "accounts" or key == "account_positions":
        return Job("hh", key, "+accounts:")
    if key == "bot_status":
        return Job("hh", key, "+bots:")
    if key.startswith("trades:"):
        parts = key.split(":", 2)
        if len(parts) == 3 and parts[1] and parts[2]:
            return Job("ls", key, f"fullon:{key}")
        return None
    if key.startswith("ohlcv:"):
        symbol, _, timeframe = key[len("ohlcv:"):].rpartition(":")
        if symbol and timeframe:
            return Job("ls", key, ohlcv_unit(symbol, timeframe))
        return None
    if key.startswith("process:data:") and len(key) > len("process:data:"):
        return Job("sv", key, PROCESS_UNIT)
    if key.startswith("process:active:") and len(key) > len("process:active:"):
        return Job("hd", key, PROCESS_UNIT, note=key[len("process:active:"):])
    return None


# What the watcher asks Redis to notify (keyspace channels) and what a rescan walks.
WATCHED_PATTERNS = ("order_status:*", "accounts", "account_positions", "bot_status",
                    "trades:*", "ohlcv:*", "process:data:*", "process:active:*")
SCANNED_PATTERNS = ("tickers:*", *WATCHED_PATTERNS)
# Key events that can remove a ticker (fullon never publishes deletions).
REMOVAL_EVENTS = ("hdel", "del", "expired", "evicted")
