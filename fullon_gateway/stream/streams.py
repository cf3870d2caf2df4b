"""The seven streams: their filters, access rules, units, channels and snapshots.

``resolve`` turns validated subscribe params and a caller into a ``Target``: the
canonical ``stream_key`` (the same for every socket asking the same thing, which is
what lets the fan-out encode a frame once), the units it covers, an optional
predicate on each change, and how to read its current state. Access is decided here:
private units only for their owner (admin: all), ``process`` only for admins, and a
filter can only narrow what the caller may see, never widen it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fullon_gateway.auth.identity import Caller
from fullon_gateway.fullon import decode, sources
from fullon_gateway.stream import names
from fullon_gateway.stream.access import Ownership

MARKET = frozenset({"tickers", "ohlcv", "process"})  # conflated: latest value per key wins
PRIVATE = frozenset({"orders", "accounts", "bots"})  # owner only
STREAMS = ("tickers", "trades", "ohlcv", "orders", "accounts", "bots", "process")
TRADES_IN_SNAPSHOT = 100
BARS_IN_SNAPSHOT = 100

Predicate = Callable[[str | None, dict[str, Any]], bool]


class AccessError(Exception):
    """Refused subscription; ``code`` is the protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Target:
    stream: str
    stream_key: str
    units: tuple[str, ...]
    params: dict[str, Any]
    accepts: Predicate | None = None
    # Ids named by the client (re-checked when ownership changes) vs "all of mine".
    explicit: bool = False
    patterns: tuple[str, ...] = field(default_factory=tuple)  # legacy channels (PSUBSCRIBE)
    request: dict[str, Any] = field(default_factory=dict)  # the params it came from

    @property
    def conflated(self) -> bool:
        return self.stream in MARKET

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(names.unit_channel(u) for u in self.units)


def full_admin(caller: Caller) -> bool:
    """An admin acting with the admin scope (an admin's read-only key is not one)."""
    return caller.is_admin and "admin" in caller.scopes


def _not_found(what: str, ident: int) -> AccessError:
    # Another user's id is indistinguishable from a missing one.
    return AccessError("NOT_FOUND", f"no such {what}: {ident}")


async def resolve(stream: str, params: dict[str, Any], caller: Caller,
                  ownership: Ownership) -> Target:
    """Validated params -> Target, or AccessError (FORBIDDEN / NOT_FOUND / INVALID_PARAMS)."""
    target = await _resolve(stream, params, caller, ownership)
    target.request = {k: v for k, v in params.items() if k != "since"}
    return target


async def _resolve(stream: str, params: dict[str, Any], caller: Caller,
                   ownership: Ownership) -> Target:
    if stream == "tickers":
        exchange = params["exchange"]
        symbols = params.get("symbols")
        if symbols is None or symbols == "*" or symbols == ["*"]:
            key, wanted = f"tickers:{exchange}:*", None
        else:
            wanted = frozenset(symbols)
            key = f"tickers:{exchange}:{','.join(sorted(wanted))}"
        return Target(
            "tickers", key, (names.tickers_unit(exchange),),
            {"exchange": exchange, "symbols": wanted},
            accepts=None if wanted is None else (lambda k, _d: k in wanted),
        )
    if stream == "trades":
        ex, sym = params["exchange"], params["symbol"]
        # The publisher's unit and fullon's trades:{ex}:{SYM} queue (sequenced by the
        # fullon watcher as its elements are appended).
        return Target("trades", f"trades:{ex}:{sym}",
                      (names.trades_unit(ex, sym), sources.trades_unit(ex, sym)),
                      {"exchange": ex, "symbol": sym})
    if stream == "ohlcv":
        ex, sym, tf = params["exchange"], params["symbol"], params["timeframe"]
        # fullon's bar list has no exchange in its key: it is shown for any exchange.
        return Target("ohlcv", f"ohlcv:{ex}:{sym}:{tf}",
                      (names.ohlcv_unit(ex, sym, tf), sources.ohlcv_unit(sym, tf)),
                      {"exchange": ex, "symbol": sym, "timeframe": tf})
    if stream == "process":
        if not full_admin(caller):
            raise AccessError("FORBIDDEN", "the process stream is for admins only")
        ptype = params.get("process_type")
        return Target(
            "process", f"process:{ptype or '*'}", (names.PROCESS_UNIT,),
            {"process_type": ptype},
            accepts=None if ptype is None else (
                lambda _k, d: d.get("process_type") == ptype),
        )
    owned = await ownership.of(caller.user_id, caller.is_admin)
    if stream in ("orders", "accounts"):
        ex_id = params.get("ex_id")
        bot_id = params.get("bot_id") if stream == "orders" else None
        if ex_id is not None and ex_id not in owned.ex_ids:
            raise _not_found("exchange account", ex_id)
        if bot_id is not None and bot_id not in owned.bot_ids:
            raise _not_found("bot", bot_id)
        ex_ids = (ex_id,) if ex_id is not None else tuple(sorted(owned.ex_ids))
        key = f"{stream}:{ex_id if ex_id is not None else '*'}"
        if bot_id is not None:
            key += f":bot:{bot_id}"
        if ex_id is None:
            # "all of mine" differs per user: keep stream keys distinct per owner so
            # identical-looking keys never mean different things.
            key += f":user:{'all' if caller.is_admin else caller.user_id}"
        if stream == "accounts":
            return Target(stream, key, tuple(names.accounts_unit(i) for i in ex_ids),
                          {"ex_ids": ex_ids, "bot_id": None}, explicit=ex_id is not None)
        # Orders: the accounts' units, plus fullon's order_status:{exchange name} hashes,
        # whose orders reach the owner of the account (ex_id) or bot (bot_id) they name.
        accepts = order_filter(frozenset(ex_ids), owned.bot_ids if ex_id is None else
                               frozenset(), bot_id, caller.is_admin and ex_id is None)
        return Target(
            stream, key, (*(names.orders_unit(i) for i in ex_ids), sources.NAMED_ORDERS_UNIT),
            {"ex_ids": ex_ids, "bot_id": bot_id}, accepts=accepts,
            explicit=ex_id is not None or bot_id is not None,
        )
    if stream == "bots":
        bot_id = params.get("bot_id")
        if bot_id is not None and bot_id not in owned.bot_ids:
            raise _not_found("bot", bot_id)
        bot_ids = (bot_id,) if bot_id is not None else tuple(sorted(owned.bot_ids))
        key = f"bots:{bot_id}" if bot_id is not None else (
            f"bots:*:user:{'all' if caller.is_admin else caller.user_id}")
        return Target("bots", key, tuple(names.bots_unit(b) for b in bot_ids),
                      {"bot_ids": bot_ids}, explicit=bot_id is not None)
    raise AccessError("INVALID_PARAMS", f"unknown stream {stream!r}")


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def order_filter(ex_ids: frozenset[int], bot_ids: frozenset[int], bot_id: int | None,
                 everything: bool) -> Predicate:
    """Which orders an orders subscription shows: those of its accounts (an order names
    its ``ex_id``), or with no ``ex_id``, of the caller's bots; narrowed to ``bot_id``."""

    def accepts(_key: str | None, order: dict[str, Any]) -> bool:
        if bot_id is not None and _as_int(order.get("bot_id")) != bot_id:
            return False
        if everything:
            return True
        ex = _as_int(order.get("ex_id"))
        if ex is not None:
            return ex in ex_ids
        bot = _as_int(order.get("bot_id"))
        return bot is not None and bot in bot_ids

    return accepts


# -- snapshots --------------------------------------------------------------------------
def queue_snapshot(pipe: Any, t: Target, prefix: str) -> None:
    """Add the commands that read ``t``'s current state to a MULTI pipeline."""
    p, a = prefix, t.params
    match t.stream:
        case "tickers":
            if a["symbols"] is None:
                pipe.hgetall(p + names.tickers_key(a["exchange"]))
            else:  # only the fields asked for, not the whole exchange (get_ticker: one)
                pipe.hmget(p + names.tickers_key(a["exchange"]), sorted(a["symbols"]))
        case "trades":
            for unit in t.units:
                pipe.xrevrange(p + names.history_key(unit), count=TRADES_IN_SNAPSHOT)
        case "ohlcv":
            pipe.zrange(p + names.ohlcv_key(a["exchange"], a["symbol"], a["timeframe"]),
                        -BARS_IN_SNAPSHOT, -1)
            pipe.execute_command("LRANGE", p + sources.ohlcv_key(a["symbol"], a["timeframe"]),
                                 -BARS_IN_SNAPSHOT, -1)
        case "orders":
            pass  # read by a script (fullon/reads.py): named hashes are listed in Redis
        case "accounts":
            ids = [str(i) for i in a["ex_ids"]] or ["0"]
            pipe.hmget(p + names.ACCOUNTS_KEY, ids)
            pipe.hmget(p + names.POSITIONS_KEY, ids)
        case "bots":
            pipe.hmget(p + names.BOT_STATUS_KEY, [str(i) for i in a["bot_ids"]] or ["0"])
        case "process":
            pass  # read by a script instead: its keys are only known inside Redis


class Tally:
    """NaN/Infinity tokens read as null while building one snapshot."""

    def __init__(self) -> None:
        self.nonfinite = 0

    def load(self, raw: bytes | str | None) -> Any:
        value, bad = decode.lenient(raw)
        self.nonfinite += bad
        return value


def build_snapshot(t: Target, results: list[Any], tally: Tally | None = None) -> dict[str, Any]:
    """The snapshot result object from the replies ``queue_snapshot`` asked for.

    Values written by fullon services are read leniently (NaN -> null, counted in
    ``tally``) and shaped as their live changes are (fullon/decode.py)."""
    a = t.params
    load = (tally or Tally()).load
    match t.stream:
        case "tickers":
            ex = a["exchange"]
            if a["symbols"] is None:
                pairs = sorted((k.decode(), v) for k, v in results[0].items())
            else:  # HMGET in symbol order; None for a symbol without a ticker
                pairs = [(s, v) for s, v in zip(sorted(a["symbols"]), results[0], strict=True)
                         if v is not None]
            return {"exchange": ex, "tickers": [decode.ticker(ex, s, load(v)) for s, v in pairs]}
        case "trades":
            entries = [e for unit_entries in results for e in unit_entries]
            entries.sort(key=lambda e: int(e[0].split(b"-")[0]))
            from fullon_gateway.stream.frames import parse_change

            trades = [parse_change(fields[b"m"]).data for _id, fields in entries]
            return {"exchange": a["exchange"], "symbol": a["symbol"],
                    "trades": trades[-TRADES_IN_SNAPSHOT:]}
        case "ohlcv":
            bars = [load(b) for b in results[0]]
            bars += [decode.bar(a["symbol"], a["timeframe"], load(b)) for b in results[1]]
            return {"exchange": a["exchange"], "symbol": a["symbol"],
                    "timeframe": a["timeframe"], "bars": bars[-BARS_IN_SNAPSHOT:]}
        case "orders":
            accepts = t.accepts
            orders = [decode.order(owner, oid, load(raw)) for owner, oid, raw in results]
            return {"orders": [o for o in orders if accepts is None or accepts(None, o)]}
        case "accounts":
            balances, positions = results
            return {"accounts": [
                {"ex_id": ex_id, "balances": load(b), "positions": load(p)}
                for ex_id, b, p in zip(a["ex_ids"], balances, positions, strict=False)
            ]}
        case "bots":
            return {"bots": [decode.bot(str(bot_id), load(v))
                             for bot_id, v in zip(a["bot_ids"], results[0], strict=False)
                             if v is not None]}
        case "process":
            ptype = a["process_type"]
            procs = [decode.process(load(raw) or {}, pid) for _t, pid, raw in results]
            if ptype is not None:
                procs = [x for x in procs if x.get("process_type") == ptype]
            return {"processes": sorted(procs, key=lambda x: (str(x.get("process_type", "")),
                                                               str(x.get("process_id", ""))))}
    raise AssertionError(t.stream)
