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

from fullon_gateway import jsonutil
from fullon_gateway.auth.identity import Caller
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
            patterns=(names.legacy_ticker_pattern(exchange),),
        )
    if stream == "trades":
        ex, sym = params["exchange"], params["symbol"]
        return Target("trades", f"trades:{ex}:{sym}", (names.trades_unit(ex, sym),),
                      {"exchange": ex, "symbol": sym})
    if stream == "ohlcv":
        ex, sym, tf = params["exchange"], params["symbol"], params["timeframe"]
        return Target("ohlcv", f"ohlcv:{ex}:{sym}:{tf}", (names.ohlcv_unit(ex, sym, tf),),
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
        unit = names.orders_unit if stream == "orders" else names.accounts_unit
        key = f"{stream}:{ex_id if ex_id is not None else '*'}"
        if bot_id is not None:
            key += f":bot:{bot_id}"
        if ex_id is None:
            # "all of mine" differs per user: keep stream keys distinct per owner so
            # identical-looking keys never mean different things.
            key += f":user:{'all' if caller.is_admin else caller.user_id}"
        return Target(
            stream, key, tuple(unit(i) for i in ex_ids),
            {"ex_ids": ex_ids, "bot_id": bot_id},
            accepts=None if bot_id is None else (lambda _k, d: d.get("bot_id") == bot_id),
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
            pipe.xrevrange(p + names.history_key(t.units[0]), count=TRADES_IN_SNAPSHOT)
        case "ohlcv":
            pipe.zrange(p + names.ohlcv_key(a["exchange"], a["symbol"], a["timeframe"]),
                        -BARS_IN_SNAPSHOT, -1)
        case "orders":
            for ex_id in a["ex_ids"]:
                pipe.hgetall(p + names.order_status_key(ex_id))
        case "accounts":
            ids = [str(i) for i in a["ex_ids"]] or ["0"]
            pipe.hmget(p + names.ACCOUNTS_KEY, ids)
            pipe.hmget(p + names.POSITIONS_KEY, ids)
        case "bots":
            pipe.hmget(p + names.BOT_STATUS_KEY, [str(i) for i in a["bot_ids"]] or ["0"])
        case "process":
            pass  # read by a script instead: its keys are only known inside Redis


def _loads(raw: bytes | None) -> Any:
    return None if raw is None else jsonutil.loads(raw)


def build_snapshot(t: Target, results: list[Any]) -> dict[str, Any]:
    """The snapshot result object from the replies ``queue_snapshot`` asked for."""
    a = t.params
    match t.stream:
        case "tickers":
            if a["symbols"] is None:
                ticks = [jsonutil.loads(v) for _k, v in sorted(results[0].items())]
            else:  # HMGET in symbol order; None for a symbol without a ticker
                ticks = [jsonutil.loads(v) for v in results[0] if v is not None]
            return {"exchange": a["exchange"], "tickers": ticks}
        case "trades":
            msgs = [jsonutil.loads(fields[b"m"]) for _id, fields in reversed(results[0])]
            return {"exchange": a["exchange"], "symbol": a["symbol"],
                    "trades": [m["data"] for m in msgs]}
        case "ohlcv":
            return {"exchange": a["exchange"], "symbol": a["symbol"],
                    "timeframe": a["timeframe"], "bars": [jsonutil.loads(b) for b in results[0]]}
        case "orders":
            orders: list[dict[str, Any]] = []
            for mapping in results:
                orders.extend(jsonutil.loads(v) for _k, v in sorted(mapping.items()))
            if a["bot_id"] is not None:
                orders = [o for o in orders if o.get("bot_id") == a["bot_id"]]
            return {"orders": orders}
        case "accounts":
            balances, positions = results
            return {"accounts": [
                {"ex_id": ex_id, "balances": _loads(b), "positions": _loads(p)}
                for ex_id, b, p in zip(a["ex_ids"], balances, positions, strict=False)
            ]}
        case "bots":
            return {"bots": [jsonutil.loads(v) for v in results[0] if v is not None]}
        case "process":
            ptype = a["process_type"]
            procs = [jsonutil.loads(v) for v in results]
            if ptype is not None:
                procs = [x for x in procs if x.get("process_type") == ptype]
            return {"processes": sorted(procs, key=lambda x: (x.get("process_type", ""),
                                                               x.get("process_id", "")))}
    raise AssertionError(t.stream)
