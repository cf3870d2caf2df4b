"""The stream kinds: one class per stream, collected in ``KINDS``.

A kind is everything the gateway knows about one stream: its name, whether it is
conflated (market data: the latest value per key wins) or never dropped, whether it
is private (owner only), its filters, how a subscribe request resolves to a
``Target``, and how its current state (the snapshot) is read. The endpoint, the
command registry (commands.py) and the stream service only ever ask the kind.

``resolve`` turns validated filters and a caller into a ``Target``: the canonical
``stream_key`` (the same for every socket asking the same thing, which is what lets
the fan-out encode a frame once), the units it covers, which change keys it wants
(the fan-out indexes subscriptions by them) and any other per-change filter. Access
is decided here: private units only for their owner (admin: all), ``process`` only
for admins, and a filter can only narrow what the caller may see, never widen it.

Adding a stream: one ``StreamKind`` subclass here (decorated ``@register``), its
unit/key names in names.py and one ``Publisher`` method in publish.py.

Over 300 lines on purpose: seven small classes that are read side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from fullon_gateway.auth.identity import Caller
from fullon_gateway.stream import frames, names
from fullon_gateway.stream.access import Owned, Ownership
from fullon_gateway.stream.fullon import decode, sources
from fullon_gateway.stream.fullon.reads import FullonReads
from fullon_gateway.stream.hub import Channel

TRADES_IN_SNAPSHOT = 100
BARS_IN_SNAPSHOT = 100

Predicate = Callable[[str | None, dict[str, Any]], bool]
Decoder = Callable[[str, bytes], frames.Change]  # (channel, raw message) -> Change


class Source(NamedTuple):
    """A channel (or pattern) a target's changes arrive on, and how to decode them."""

    channel: Channel
    decode: Decoder


def gateway_change(_channel: str, raw: bytes) -> frames.Change:
    """A message of the gateway's own publisher (publish.py) on ``stream:{unit}``."""
    return frames.parse_change(raw)


class AccessError(Exception):
    """Refused subscription; ``code`` is the protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Target:
    """What one subscription (or one ``get_*``) covers, resolved for one caller."""

    kind: StreamKind
    stream_key: str
    units: tuple[str, ...]
    params: dict[str, Any]
    # The change keys wanted (tickers: the symbols); None = every key. The fan-out
    # indexes subscriptions by these, so a change only visits the sockets that want it.
    keys: frozenset[str] | None = None
    accepts: Predicate | None = None  # any other per-change filter
    # Ids named by the client (re-checked when ownership changes) vs "all of mine".
    explicit: bool = False
    # Channels of other publishers (fullon_cache's), each with its decoder.
    extra_sources: tuple[Source, ...] = field(default_factory=tuple)
    request: dict[str, Any] = field(default_factory=dict)  # the filters it came from

    @property
    def stream(self) -> str:
        return self.kind.name

    @property
    def conflated(self) -> bool:
        return self.kind.conflated

    @property
    def sources(self) -> tuple[Source, ...]:
        """Every channel the target's changes come on: its units' own, then the others."""
        own = tuple(Source(Channel(names.unit_channel(u)), gateway_change) for u in self.units)
        return own + self.extra_sources

    def wants(self, key: str | None, data: dict[str, Any]) -> bool:
        """Whether a change (its key and data) belongs to this target."""
        if self.keys is not None and key not in self.keys:
            return False
        return self.accepts is None or self.accepts(key, data)


def full_admin(caller: Caller) -> bool:
    """An admin acting with the admin scope (an admin's read-only key is not one)."""
    return caller.is_admin and "admin" in caller.scopes


def _not_found(what: str, ident: int) -> AccessError:
    # Another user's id is indistinguishable from a missing one.
    return AccessError("NOT_FOUND", f"no such {what}: {ident}")


def _user_scope(caller: Caller) -> str:
    # "all of mine" differs per user: keep stream keys distinct per owner so
    # identical-looking keys never mean different things.
    return f":user:{'all' if caller.is_admin else caller.user_id}"


class StreamKind:
    name: ClassVar[str]
    conflated: ClassVar[bool] = False  # True: a newer value per key replaces an unsent one
    private: ClassVar[bool] = False  # True: units belong to a user (re-checked on changes)
    required: ClassVar[tuple[str, ...]] = ()  # filters a subscribe must give
    optional: ClassVar[tuple[str, ...]] = ()  # filters it may give

    @property
    def filters(self) -> frozenset[str]:
        return frozenset(self.required + self.optional)

    def check(self, filters: dict[str, Any]) -> tuple[str, str] | None:
        """A cross-field problem with validated filters, as (field, message); None: fine."""
        return None

    async def resolve(self, filters: dict[str, Any], caller: Caller,
                      ownership: Ownership) -> Target:
        """Validated filters -> Target, or AccessError (FORBIDDEN / NOT_FOUND)."""
        raise NotImplementedError

    def queue_snapshot(self, pipe: Any, t: Target, prefix: str) -> None:
        """Add the commands that read ``t``'s current state to a MULTI pipeline."""
        raise NotImplementedError

    def build_snapshot(self, t: Target, replies: list[Any], tally: Tally) -> dict[str, Any]:
        """The snapshot result object from the replies ``queue_snapshot`` asked for.
        Values fullon services wrote are read leniently (``tally.load``: NaN -> null,
        counted) and shaped as their live changes are (stream/fullon/decode.py)."""
        raise NotImplementedError

    async def read_snapshot(self, redis: Any, prefix: str, t: Target,
                            tally: Tally) -> tuple[int, Any]:
        """(global seq G, snapshot result) read atomically with the publisher's script."""
        async with redis.pipeline(transaction=True) as pipe:
            pipe.get(prefix + names.SEQ_COUNTER)
            self.queue_snapshot(pipe, t, prefix)
            res = await pipe.execute()
        return int(res[0] or 0), self.build_snapshot(t, res[1:], tally)


KINDS: dict[str, StreamKind] = {}


def register(cls: type[StreamKind]) -> type[StreamKind]:
    KINDS[cls.name] = cls()
    return cls


class Tally:
    """NaN/Infinity tokens read as null while building one snapshot."""

    def __init__(self) -> None:
        self.nonfinite = 0

    def load(self, raw: bytes | str | None) -> Any:
        value, bad = decode.lenient(raw)
        self.nonfinite += bad
        return value


# -- market data ----------------------------------------------------------------------
@register
class Tickers(StreamKind):
    name = "tickers"
    conflated = True
    required = ("exchange",)
    optional = ("symbols", "symbol")  # one "symbol" means that symbol only

    def check(self, filters: dict[str, Any]) -> tuple[str, str] | None:
        if "symbol" in filters and "symbols" in filters:
            return "symbol", "give symbol or symbols, not both"
        return None

    async def resolve(self, filters: dict[str, Any], caller: Caller,
                      ownership: Ownership) -> Target:
        exchange = filters["exchange"]
        symbols = [filters["symbol"]] if "symbol" in filters else filters.get("symbols")
        if symbols is None or symbols == "*" or symbols == ["*"]:
            key, wanted = f"tickers:{exchange}:*", None
        else:
            wanted = frozenset(symbols)
            key = f"tickers:{exchange}:{','.join(sorted(wanted))}"
        # fullon_cache's set_ticker reaches this unit too: the fullon watcher sequences
        # it (stream/fullon/), so there is no unsequenced ticker_updates path.
        return Target(self, key, (names.tickers_unit(exchange),),
                      {"exchange": exchange, "symbols": wanted}, keys=wanted)

    def queue_snapshot(self, pipe: Any, t: Target, prefix: str) -> None:
        key = prefix + names.tickers_key(t.params["exchange"])
        if t.params["symbols"] is None:
            pipe.hgetall(key)
        else:  # only the fields asked for, not the whole exchange (get_ticker: one)
            pipe.hmget(key, sorted(t.params["symbols"]))

    def build_snapshot(self, t: Target, replies: list[Any], tally: Tally) -> dict[str, Any]:
        ex = t.params["exchange"]
        if t.params["symbols"] is None:
            pairs = sorted((k.decode(), v) for k, v in replies[0].items())
        else:  # HMGET in symbol order; None for a symbol without a ticker
            pairs = [(s, v) for s, v in zip(sorted(t.params["symbols"]), replies[0],
                                            strict=True) if v is not None]
        return {"exchange": ex, "tickers": [decode.ticker(ex, s, tally.load(v))
                                            for s, v in pairs]}


@register
class Trades(StreamKind):
    name = "trades"  # never dropped: every trade counts
    required = ("exchange", "symbol")

    async def resolve(self, filters: dict[str, Any], caller: Caller,
                      ownership: Ownership) -> Target:
        ex, sym = filters["exchange"], filters["symbol"]
        # The publisher's unit and fullon's trades:{ex}:{SYM} queue, whose appended
        # elements the fullon watcher sequences (never consuming them).
        return Target(self, f"trades:{ex}:{sym}",
                      (names.trades_unit(ex, sym), sources.trades_unit(ex, sym)),
                      {"exchange": ex, "symbol": sym})

    def queue_snapshot(self, pipe: Any, t: Target, prefix: str) -> None:
        # The snapshot is the history's tail: trades have no state of their own.
        for unit in t.units:
            pipe.xrevrange(prefix + names.history_key(unit), count=TRADES_IN_SNAPSHOT)

    def build_snapshot(self, t: Target, replies: list[Any], tally: Tally) -> dict[str, Any]:
        entries = sorted((e for unit in replies for e in unit),
                         key=lambda e: int(e[0].split(b"-")[0]))
        trades = [frames.parse_change(fields[b"m"]).data for _id, fields in entries]
        return {"exchange": t.params["exchange"], "symbol": t.params["symbol"],
                "trades": trades[-TRADES_IN_SNAPSHOT:]}


@register
class Ohlcv(StreamKind):
    name = "ohlcv"
    conflated = True  # key: the bar's timestamp
    required = ("exchange", "symbol", "timeframe")

    async def resolve(self, filters: dict[str, Any], caller: Caller,
                      ownership: Ownership) -> Target:
        ex, sym, tf = filters["exchange"], filters["symbol"], filters["timeframe"]
        # fullon's bar list (ohlcv:{symbol}:{tf}) has no exchange: shown for any.
        return Target(self, f"ohlcv:{ex}:{sym}:{tf}",
                      (names.ohlcv_unit(ex, sym, tf), sources.ohlcv_unit(sym, tf)),
                      {"exchange": ex, "symbol": sym, "timeframe": tf})

    def queue_snapshot(self, pipe: Any, t: Target, prefix: str) -> None:
        a = t.params
        pipe.zrange(prefix + names.ohlcv_key(a["exchange"], a["symbol"], a["timeframe"]),
                    -BARS_IN_SNAPSHOT, -1)
        pipe.execute_command("LRANGE", prefix + sources.ohlcv_key(a["symbol"], a["timeframe"]),
                             -BARS_IN_SNAPSHOT, -1)

    def build_snapshot(self, t: Target, replies: list[Any], tally: Tally) -> dict[str, Any]:
        a = t.params
        bars = [tally.load(b) for b in replies[0]]
        bars += [decode.bar(a["symbol"], a["timeframe"], tally.load(b)) for b in replies[1]]
        return {**a, "bars": bars[-BARS_IN_SNAPSHOT:]}


@register
class Process(StreamKind):
    name = "process"
    conflated = True  # key: type:id, the latest heartbeat wins
    optional = ("process_type",)

    async def resolve(self, filters: dict[str, Any], caller: Caller,
                      ownership: Ownership) -> Target:
        if not full_admin(caller):
            raise AccessError("FORBIDDEN", "the process stream is for admins only")
        return self.target(filters.get("process_type"))

    def target(self, ptype: str | None) -> Target:
        return Target(self, f"process:{ptype or '*'}", (names.PROCESS_UNIT,),
                      {"process_type": ptype},
                      accepts=None if ptype is None else (
                          lambda _k, d: d.get("process_type") == ptype))

    async def read_snapshot(self, redis: Any, prefix: str, t: Target,
                            tally: Tally) -> tuple[int, Any]:
        # fullon's ProcessCache registry (process:active:{type} + process:data:{id}),
        # by a script: its keys are only known inside Redis.
        g, rows = await FullonReads(redis, prefix).processes()
        return g, self.build_snapshot(t, list(rows), tally)

    def build_snapshot(self, t: Target, replies: list[Any], tally: Tally) -> dict[str, Any]:
        ptype = t.params["process_type"]
        procs = [decode.process(tally.load(raw) or {}, pid) for _t, pid, raw in replies]
        if ptype is not None:
            procs = [x for x in procs if x.get("process_type") == ptype]
        return {"processes": sorted(procs, key=lambda x: (str(x.get("process_type", "")),
                                                           str(x.get("process_id", ""))))}


# -- private data ---------------------------------------------------------------------
class _Private(StreamKind):
    private = True

    async def resolve(self, filters: dict[str, Any], caller: Caller,
                      ownership: Ownership) -> Target:
        return self.resolve_owned(filters, caller, await ownership.of(caller.user_id,
                                                                      caller.is_admin))

    def resolve_owned(self, filters: dict[str, Any], caller: Caller, owned: Owned) -> Target:
        raise NotImplementedError


class _ByAccount(_Private):
    """Streams whose unit is one exchange account (ex_id)."""

    @staticmethod
    def unit(ex_id: int) -> str:
        raise NotImplementedError

    def resolve_owned(self, filters: dict[str, Any], caller: Caller, owned: Owned) -> Target:
        ex_id = filters.get("ex_id")
        bot_id = filters.get("bot_id")
        if ex_id is not None and ex_id not in owned.ex_ids:
            raise _not_found("exchange account", ex_id)
        if bot_id is not None and bot_id not in owned.bot_ids:
            raise _not_found("bot", bot_id)
        ex_ids = (ex_id,) if ex_id is not None else tuple(sorted(owned.ex_ids))
        key = f"{self.name}:{ex_id if ex_id is not None else '*'}"
        if bot_id is not None:
            key += f":bot:{bot_id}"
        if ex_id is None:
            key += _user_scope(caller)
        return self.target(key, ex_ids, bot_id, owned, caller, ex_id is not None)

    def target(self, key: str, ex_ids: tuple[int, ...], bot_id: int | None, owned: Owned,
               caller: Caller, named: bool) -> Target:
        return Target(
            self, key, tuple(self.unit(i) for i in ex_ids),
            {"ex_ids": ex_ids, "bot_id": bot_id},
            accepts=None if bot_id is None else (lambda _k, d: d.get("bot_id") == bot_id),
            explicit=named or bot_id is not None,
        )


@register
class Orders(_ByAccount):
    name = "orders"
    optional = ("ex_id", "bot_id")

    @staticmethod
    def unit(ex_id: int) -> str:
        return names.orders_unit(ex_id)

    def target(self, key: str, ex_ids: tuple[int, ...], bot_id: int | None, owned: Owned,
               caller: Caller, named: bool) -> Target:
        # The accounts' units, plus fullon's order_status:{exchange name} hashes (one
        # shared unit), whose orders reach the owner of the ex_id or bot_id they name.
        accepts = order_filter(frozenset(ex_ids), frozenset() if named else owned.bot_ids,
                               bot_id, caller.is_admin and not named)
        return Target(self, key, (*(self.unit(i) for i in ex_ids), sources.NAMED_ORDERS_UNIT),
                      {"ex_ids": ex_ids, "bot_id": bot_id}, accepts=accepts,
                      explicit=named or bot_id is not None)

    async def read_snapshot(self, redis: Any, prefix: str, t: Target,
                            tally: Tally) -> tuple[int, Any]:
        # A script: the exchange names of the named hashes are only known inside Redis.
        g, rows = await FullonReads(redis, prefix).orders(t.params["ex_ids"])
        return g, self.build_snapshot(t, list(rows), tally)

    def build_snapshot(self, t: Target, replies: list[Any], tally: Tally) -> dict[str, Any]:
        orders = [decode.order(owner, oid, tally.load(raw)) for owner, oid, raw in replies]
        return {"orders": [o for o in orders if t.accepts is None or t.accepts(None, o)]}


@register
class Accounts(_ByAccount):
    name = "accounts"
    optional = ("ex_id",)

    @staticmethod
    def unit(ex_id: int) -> str:
        return names.accounts_unit(ex_id)

    def queue_snapshot(self, pipe: Any, t: Target, prefix: str) -> None:
        ids = [str(i) for i in t.params["ex_ids"]] or ["0"]
        pipe.hmget(prefix + names.ACCOUNTS_KEY, ids)
        pipe.hmget(prefix + names.POSITIONS_KEY, ids)

    def build_snapshot(self, t: Target, replies: list[Any], tally: Tally) -> dict[str, Any]:
        balances, positions = replies
        return {"accounts": [
            {"ex_id": ex_id, "balances": tally.load(b), "positions": tally.load(p)}
            for ex_id, b, p in zip(t.params["ex_ids"], balances, positions, strict=False)
        ]}


@register
class Bots(_Private):
    name = "bots"
    optional = ("bot_id",)

    def resolve_owned(self, filters: dict[str, Any], caller: Caller, owned: Owned) -> Target:
        bot_id = filters.get("bot_id")
        if bot_id is not None and bot_id not in owned.bot_ids:
            raise _not_found("bot", bot_id)
        bot_ids = (bot_id,) if bot_id is not None else tuple(sorted(owned.bot_ids))
        key = f"bots:{bot_id}" if bot_id is not None else f"bots:*{_user_scope(caller)}"
        return Target(self, key, tuple(names.bots_unit(b) for b in bot_ids),
                      {"bot_ids": bot_ids}, explicit=bot_id is not None)

    def queue_snapshot(self, pipe: Any, t: Target, prefix: str) -> None:
        pipe.hmget(prefix + names.BOT_STATUS_KEY, [str(i) for i in t.params["bot_ids"]] or ["0"])

    def build_snapshot(self, t: Target, replies: list[Any], tally: Tally) -> dict[str, Any]:
        return {"bots": [decode.bot(str(bot_id), tally.load(v))
                         for bot_id, v in zip(t.params["bot_ids"], replies[0], strict=False)
                         if v is not None]}


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def order_filter(ex_ids: frozenset[int], bot_ids: frozenset[int], bot_id: int | None,
                 everything: bool) -> Predicate:
    """Which orders an orders target shows: those of its accounts (an order names its
    ``ex_id``) or, with no ``ex_id``, of the caller's bots; narrowed to ``bot_id``."""

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


async def resolve(kind: StreamKind, filters: dict[str, Any], caller: Caller,
                  ownership: Ownership) -> Target:
    """``kind.resolve`` plus what every target remembers: the filters it came from."""
    target = await kind.resolve(filters, caller, ownership)
    target.request = {k: v for k, v in filters.items() if k != "since"}
    return target
