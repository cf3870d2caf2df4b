"""fullon_cache_api's protocol on the per-stream paths, so its clients run unchanged.

On ``/api/v1/cache/ws/{stream}/{connection_id}`` the actions of fullon_cache_api
(FULLON_CACHE.md section 6) are answered with its message names and shapes: success
``{request_id, action, success: true, result}``, not-found ``{..., success: false,
error_code: "<X>_NOT_FOUND", error}``, errors ``{request_id, success: false,
error_code, error}``, stream acks ``{request_id, action, success, message,
stream_key: "{connection_id}:{request_id}"}`` and pushes ``{request_id, action:
"<x>_update", result: {stream_key, ...}}``. The project's own actions (subscribe,
unsubscribe, auth...) keep working there, and ``/api/v1/cache/ws`` keeps the
project's contract only.

Where the old server was wrong this one is not, and says so in docs/streams.md:
every read is non-destructive (``get_trades`` answers from the history and never
drains the queue), every private item is checked for ownership (``user_id`` is not a
filter others can widen), pushes are driven by sequenced changes instead of a 0.5 s
loop, and nulls stay null instead of failing the reply. This file is long because
it is one protocol's whole surface: seven domains, each a few lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fullon_gateway import jsonutil
from fullon_gateway.auth.identity import Caller
from fullon_gateway.stream import frames, names
from fullon_gateway.stream.connection import Connection
from fullon_gateway.stream.fanout import Subscription
from fullon_gateway.stream.fullon import decode, sources
from fullon_gateway.stream.kinds import KINDS, AccessError, Target, full_admin, resolve

ACTIONS: dict[str, frozenset[str]] = {
    "tickers": frozenset({"get_ticker", "get_all_tickers", "stream_tickers"}),
    "accounts": frozenset({"get_balance", "get_positions", "stream_positions"}),
    "bots": frozenset({"get_bot_status", "is_blocked", "get_bots", "stream_bot_status"}),
    "trades": frozenset({"get_trades", "stream_trade_updates"}),
    "orders": frozenset({"get_order_status", "get_queue_length", "stream_order_queue"}),
    "ohlcv": frozenset({"get_latest_ohlcv_bars", "stream_ohlcv"}),
    "process": frozenset({"get_system_health", "get_active_processes",
                          "stream_process_health"}),
}


class CacheApiError(Exception):
    """An error reply; ``action`` set means the not-found shape (it names the action)."""

    def __init__(self, code: str, message: str, with_action: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.with_action = with_action


def handles(stream: str | None, action: str) -> bool:
    return stream is not None and action in ACTIONS.get(stream, ())


def error_frame(request_id: Any, action: str, exc: CacheApiError) -> bytes:
    body: dict[str, Any] = {"request_id": request_id}
    if exc.with_action:
        body["action"] = action
    body.update({"success": False, "error_code": exc.code, "error": exc.message})
    return jsonutil.dumps(body)


def _f(value: Any, default: float | None = 0.0) -> float | None:
    """A number as float (fullon_cache_api casts); null/NaN stay null, text -> default."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _epoch(value: Any) -> float | None:
    """A trade/order time as epoch seconds: numbers as they are, ISO text parsed."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return _f(value, None)
    return None


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _need(params: dict[str, Any], *names_: str, message: str) -> list[Any]:
    values = [params.get(n) for n in names_]
    if any(v is None or v == "" for v in values):
        raise CacheApiError("INVALID_PARAMS", message)
    return values


def _int(value: Any, message: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise CacheApiError("INVALID_PARAMS", message) from None


# -- result shapes ----------------------------------------------------------------------
def ticker_result(t: dict[str, Any]) -> dict[str, Any]:
    return {"symbol": t.get("symbol"), "exchange": t.get("exchange"), "price": _f(t.get("price")),
            "volume": _f(t.get("volume")), "timestamp": _f(t.get("time", t.get("timestamp"))),
            "bid": _f(t.get("bid")), "ask": _f(t.get("ask")),
            "change_24h": _f(t.get("change_24h", 0.0))}


def position_results(ex_id: Any, positions: Any) -> list[dict[str, Any]]:
    out = []
    for symbol, pos in (positions or {}).items():
        if symbol == "timestamp" or not isinstance(pos, dict):
            continue  # the root timestamp of fullon's positions object
        volume = _f(pos.get("volume")) or 0.0
        side = pos.get("side") if pos.get("side") in ("long", "short") else (
            "long" if volume >= 0 else "short")
        out.append({"symbol": symbol, "exchange": str(ex_id), "side": side,
                    "size": abs(volume), "entry_price": _f(pos.get("price")),
                    "mark_price": _f(pos.get("price")), "pnl": 0.0, "pnl_percent": 0.0,
                    "timestamp": pos.get("timestamp")})
    return out


def trade_result(t: dict[str, Any]) -> dict[str, Any]:
    return {"symbol": t.get("symbol"), "exchange": t.get("exchange"), "side": t.get("side"),
            "volume": _f(t.get("volume")), "price": _f(t.get("price")),
            "timestamp": _epoch(t.get("time", t.get("timestamp"))),
            "trade_id": t.get("trade_id")}


def order_result(o: dict[str, Any]) -> dict[str, Any]:
    amount, filled = _f(o.get("volume")), _f(o.get("final_volume")) or 0.0
    ts = _epoch(o.get("timestamp"))
    return {"order_id": o.get("order_id"), "symbol": o.get("symbol"),
            "exchange": o.get("exchange"), "side": o.get("side"), "amount": amount,
            "price": _f(o.get("price")), "filled": filled,
            "remaining": None if amount is None else max(amount - filled, 0.0),
            "status": o.get("status"), "order_type": o.get("order_type"),
            "timestamp": ts, "last_update": ts}


def bar_array(b: dict[str, Any]) -> list[Any]:
    return [b.get(k) for k in decode.BAR_FIELDS]


def bot_state(value: dict[str, Any]) -> str:
    for feed in value.values():
        if isinstance(feed, dict) and "status" in feed:
            return str(feed["status"])
    return "unknown"


# -- streams ----------------------------------------------------------------------------
Render = Callable[[Any, frames.Change], list[tuple[dict[str, Any], Any]]]


class CacheApiSubscription(Subscription):
    """A subscription whose changes become fullon_cache_api pushes (``render``)."""

    __slots__ = ("action", "render", "state", "stream_key_label")

    def __init__(self, conn: Connection, target: Target, request_id: Any, action: str,
                 stream_key: str, render: Render, state: Any) -> None:
        super().__init__(conn, target, request_id)
        self.action = action
        self.render = render
        self.state = state
        self.stream_key_label = stream_key

    def _push(self, change: frames.Change) -> None:
        for result, ckey in self.render(self, change):
            body = {"request_id": self.request_id, "action": self.action,
                    "result": {"stream_key": self.stream_key_label, **result}}
            self.conn.enqueue(jsonutil.dumps(body), None if ckey is None else (self, ckey),
                              change.ts, self.stream)

    def send(self, change: frames.Change, head: bytes, ts: float | None) -> bool:
        """Every change (live, buffered, replayed after a resync) as its push."""
        if change.seq is not None:
            if change.seq <= self.last_seq:
                return False
            self.last_seq = change.seq
        self._push(change)
        return True


def _render_ticker(sub: CacheApiSubscription, change: frames.Change) -> list[Any]:
    return [(ticker_result(change.data), change.key)]


def _render_position(sub: CacheApiSubscription, change: frames.Change) -> list[Any]:
    d = change.data
    if d.get("kind") != "positions":
        return []
    return [({"user_id": None, **p}, f"{d['ex_id']}:{p['symbol']}")
            for p in position_results(d["ex_id"], d.get("positions"))]


def _render_bots(sub: CacheApiSubscription, change: frames.Change) -> list[Any]:
    d = dict(change.data)
    bot_id = str(d.pop("bot_id"))
    if d.pop("deleted", False):
        sub.state.pop(bot_id, None)
    else:
        sub.state[bot_id] = d
    return [({"bots": dict(sub.state), "timestamp": _now_iso()}, "bots")]


def _render_trade(sub: CacheApiSubscription, change: frames.Change) -> list[Any]:
    return [(trade_result(change.data), None)]


def _render_queue(sub: CacheApiSubscription, change: frames.Change) -> list[Any]:
    d = change.data
    if not _in_hash(d, sub.state["exchange"]):
        return []
    ids: set[str] = sub.state["ids"]
    before = len(ids)
    if d.get("deleted"):
        ids.discard(str(d.get("order_id")))
    else:
        ids.add(str(d.get("order_id")))
    if len(ids) == before:
        return []  # sent on change only
    return [({"exchange": sub.state["exchange"], "queue_length": len(ids),
              "timestamp": _now_iso()}, "queue")]


def _render_bar(sub: CacheApiSubscription, change: frames.Change) -> list[Any]:
    d = change.data
    if d.get("timestamp") == sub.state.get("last"):
        return []  # sent when the last bar's ts changes
    sub.state["last"] = d.get("timestamp")
    return [({"symbol": d.get("symbol"), "timeframe": d.get("timeframe"),
              "bar": [_f(x) for x in bar_array(d)]}, None)]


def _render_process(sub: CacheApiSubscription, change: frames.Change) -> list[Any]:
    ids: set[str] = sub.state
    before = len(ids)
    pid = str(change.data.get("process_id"))
    if change.data.get("deleted") or change.data.get("status") == "stopped":
        ids.discard(pid)
    else:
        ids.add(pid)
    if len(ids) == before:
        return []
    return [({"active_processes": len(ids), "timestamp": _now_iso()}, "process")]


def _in_hash(order: dict[str, Any], exchange: str) -> bool:
    """Whether an order is a field of ``order_status:{exchange}``: the subscription of a
    numeric one covers that account's unit only; named hashes share one unit."""
    return exchange.isdigit() or order.get("exchange") == exchange


# -- requests ---------------------------------------------------------------------------
class CacheApi:
    """One socket's fullon_cache_api actions (its stream is the path's)."""

    def __init__(self, service: Any, conn: Connection, connection_id: str) -> None:
        self.service = service  # StreamService
        self.redis = service.redis
        self.prefix = service.prefix
        self.conn = conn
        self.connection_id = connection_id

    @property
    def caller(self) -> Caller:
        assert self.conn.caller is not None
        return self.conn.caller

    async def handle(self, request_id: Any, action: str, params: dict[str, Any]) -> None:
        try:
            handler = getattr(self, f"_{action}")
            result = await handler(request_id, action, params)
        except CacheApiError as exc:
            self.conn.enqueue(error_frame(request_id, action, exc))
            return
        except AccessError as exc:
            self.conn.enqueue(error_frame(request_id, action, CacheApiError(exc.code,
                                                                            exc.message)))
            return
        if result is not None:
            self.conn.enqueue(jsonutil.dumps({"request_id": request_id, "action": action,
                                              "success": True, "result": result}))

    async def _snapshot(self, stream: str, params: dict[str, Any]) -> dict[str, Any]:
        target = await resolve(KINDS[stream], params, self.caller, self.service.ownership)
        snap: dict[str, Any] = (await self.service.read_snapshot(target)).result
        return snap

    async def _stream(self, request_id: Any, action: str, target: Target, push: str,
                      render: Render, state: Any, message: str,
                      initial: Callable[[CacheApiSubscription, dict[str, Any]], None]
                      | None = None) -> None:
        """Ack, then (optionally) the current state as pushes, then every change."""
        stream_key = f"{self.connection_id}:{request_id}"
        conn = self.conn
        key = f"cache_api:{stream_key}"
        if key in conn.subs:
            raise CacheApiError("INVALID_PARAMS", f"stream {stream_key} already started")
        sub = CacheApiSubscription(conn, target, request_id, push, stream_key, render, state)
        sub.buffer = []
        conn.subs[key] = sub
        self.service.metrics.subscriptions.labels(target.stream).inc()
        try:
            await self.service.fanout.attach(sub)
            g, snap = await self.service.read_snapshot(target)
        except Exception:
            await self.service.unsubscribe(conn, key)
            raise CacheApiError("INTERNAL_ERROR", "Failed to start streaming") from None
        except BaseException:  # cancelled: leave, never turn it into a reply
            await self.service.unsubscribe(conn, key)
            raise
        # No await from here: ack, initial pushes, then the buffered changes after g.
        conn.enqueue(jsonutil.dumps({"request_id": request_id, "action": action,
                                     "success": True, "message": message,
                                     "stream_key": stream_key}))
        if initial is not None:
            initial(sub, snap)
        sub.last_seq = g
        buffered, sub.buffer = sub.buffer, None
        for change in buffered:
            if change.seq is None or change.seq > g:
                sub.deliver(change)

    # tickers ----------------------------------------------------------------------
    async def _get_ticker(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        exchange, symbol = _need(p, "exchange", "symbol",
                                 message="exchange and symbol parameters required")
        snap = await self._snapshot("tickers", {"exchange": str(exchange),
                                                "symbols": [str(symbol)]})
        if not snap["tickers"]:
            raise CacheApiError("TICKER_NOT_FOUND", f"Ticker {symbol} not found for {exchange}",
                                with_action=True)
        return ticker_result(snap["tickers"][0])

    async def _get_all_tickers(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        (exchange,) = _need(p, "exchange", message="exchange parameter required")
        snap = await self._snapshot("tickers", {"exchange": str(exchange), "symbols": None})
        return {"exchange": exchange, "tickers": [ticker_result(t) for t in snap["tickers"]]}

    async def _stream_tickers(self, rid: Any, action: str, p: dict[str, Any]) -> None:
        (exchange,) = _need(p, "exchange", message="exchange parameter required")
        symbols = p.get("symbols") or []
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise CacheApiError("INVALID_PARAMS", "symbols must be a list of strings")
        wanted = frozenset(symbols)  # empty: nothing is ever sent (as fullon_cache_api)
        target = Target(KINDS["tickers"], f"cache_api:tickers:{exchange}",
                        (names.tickers_unit(str(exchange)),),
                        {"exchange": str(exchange), "symbols": None}, keys=wanted)

        def initial(sub: CacheApiSubscription, snap: dict[str, Any]) -> None:
            for tick in snap["tickers"]:
                if tick.get("symbol") in wanted:
                    sub._push(frames.Change(None, 0, tick["symbol"], tick, None, b""))

        await self._stream(rid, action, target, "ticker_update", _render_ticker, None,
                           f"Streaming started for {len(wanted)} symbols on {exchange}",
                           initial)

    # accounts ---------------------------------------------------------------------
    def _ex_id(self, p: dict[str, Any], *keys: str) -> int | None:
        for key in keys:
            if p.get(key) not in (None, ""):
                return _int(p[key], f"{key} must be an integer id")
        return None

    async def _get_balance(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        user_id = p.get("user_id")
        currency = p.get("currency") or p.get("exchange")
        _need({"user_id": user_id, "currency": currency}, "user_id", "currency",
              message="user_id and currency parameters required")
        ex_id = _int(user_id, "user_id must be an integer")  # fullon: the accounts field
        try:
            snap = await self._snapshot("accounts", {"ex_id": ex_id})
        except AccessError:
            snap = {"accounts": []}
        balances = (snap["accounts"][0]["balances"] if snap["accounts"] else None) or {}
        entry = balances.get(currency)
        if not isinstance(entry, dict):
            raise CacheApiError("BALANCE_NOT_FOUND",
                                f"Balance not found for user {user_id} {currency}",
                                with_action=True)
        total = _f(entry.get("balance", entry.get("total"))) or 0.0
        # Writers say free; the old reader said available (FULLON_CACHE.md 7.3).
        available = _f(entry.get("available", entry.get("free"))) or 0.0
        return {"user_id": ex_id, "currency": currency, "total_balance": total,
                "available_balance": available,
                "reserved_balance": max(total - available, 0.0), "timestamp": _now_iso()}

    async def _positions(self, p: dict[str, Any]) -> tuple[int | None, dict[str, Any]]:
        if p.get("user_id") in (None, "") and p.get("exchange") in (None, ""):
            raise CacheApiError("INVALID_PARAMS", "user_id or exchange parameter required")
        ex_id = self._ex_id(p, "exchange")
        return ex_id, ({"ex_id": ex_id} if ex_id is not None else {})

    async def _get_positions(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        _ex_id, params = await self._positions(p)
        snap = await self._snapshot("accounts", params)
        positions = [x for a in snap["accounts"]
                     for x in position_results(a["ex_id"], a["positions"])]
        user_id = p.get("user_id")
        return {"user_id": None if user_id in (None, "") else _int(user_id, "bad user_id"),
                "exchange": p.get("exchange"), "positions": positions,
                "count": len(positions)}

    async def _stream_positions(self, rid: Any, action: str, p: dict[str, Any]) -> None:
        ex_id, params = await self._positions(p)
        target = await resolve(KINDS["accounts"], params, self.caller, self.service.ownership)

        def initial(sub: CacheApiSubscription, snap: dict[str, Any]) -> None:
            for acct in snap["accounts"]:
                data = {"ex_id": acct["ex_id"], "kind": "positions",
                        "positions": acct["positions"]}
                sub._push(frames.Change(None, 0, None, data, None, b""))

        who = f"exchange {ex_id}" if ex_id is not None else f"user {p.get('user_id')}"
        await self._stream(rid, action, target, "position_update", _render_position, None,
                           f"Streaming started for {who}", initial)

    # bots -------------------------------------------------------------------------
    async def _get_bot_status(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        (bot_id,) = _need(p, "bot_id", message="bot_id parameter required")
        try:
            bots = (await self._snapshot("bots", {"bot_id": _int(bot_id, "bad bot_id")}))["bots"]
        except (AccessError, CacheApiError):
            bots = []
        if not bots:
            raise CacheApiError("BOT_NOT_FOUND", f"Bot {bot_id} not found", with_action=True)
        data = {k: v for k, v in bots[0].items() if k != "bot_id"}
        return {"bot_id": str(bot_id), "status": bot_state(data), "data": data,
                "timestamp": _now_iso()}

    async def _get_bots(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        bots = (await self._snapshot("bots", {}))["bots"]
        return {"bots": {str(b["bot_id"]): {k: v for k, v in b.items() if k != "bot_id"}
                         for b in bots}}

    async def _is_blocked(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        exchange, symbol = _need(p, "exchange", "symbol",
                                 message="exchange and symbol parameters required")
        ex_id = _int(exchange, "exchange must be the account id (ex_id)")
        owned = await self.service.ownership.of(self.caller.user_id, self.caller.is_admin)
        blocked_by = None
        if ex_id in owned.ex_ids:  # another user's account reads as not blocked
            raw = await self.redis.hget(self.prefix + "block_exchange", f"{ex_id}:{symbol}")
            blocked_by = raw.decode() if raw is not None else None
        return {"exchange": exchange, "symbol": symbol, "is_blocked": blocked_by is not None,
                "blocked_by": blocked_by, "timestamp": _now_iso()}

    async def _stream_bot_status(self, rid: Any, action: str, p: dict[str, Any]) -> None:
        bot_id = self._ex_id(p, "bot_id")
        params = {"bot_id": bot_id} if bot_id is not None else {}
        target = await resolve(KINDS["bots"], params, self.caller, self.service.ownership)
        state: dict[str, Any] = {}

        def initial(sub: CacheApiSubscription, snap: dict[str, Any]) -> None:
            for b in snap["bots"]:
                state[str(b["bot_id"])] = {k: v for k, v in b.items() if k != "bot_id"}

        await self._stream(rid, action, target, "bot_update", _render_bots, state,
                           f"Streaming started for bot {bot_id}" if bot_id is not None
                           else "Streaming started", initial)

    # trades -----------------------------------------------------------------------
    async def _get_trades(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        exchange, symbol = _need(p, "exchange", "symbol",
                                 message="exchange and symbol parameters required")
        # Never the old LRANGE + DEL: the recent trades the gateway sequenced, unconsumed.
        snap = await self._snapshot("trades", {"exchange": str(exchange),
                                               "symbol": str(symbol)})
        return {"exchange": exchange, "symbol": str(symbol).replace("/", ""),
                "trades": [trade_result(t) for t in snap["trades"]]}

    async def _stream_trade_updates(self, rid: Any, action: str, p: dict[str, Any]) -> None:
        (exchange,) = _need(p, "exchange", message="exchange parameter required")
        symbol = p.get("symbol")
        label = f"{exchange} symbol={symbol}" if symbol else str(exchange)
        if not symbol:  # as fullon_cache_api: without a symbol nothing is ever sent
            self.conn.enqueue(jsonutil.dumps({
                "request_id": rid, "action": action, "success": True,
                "message": f"Streaming started for {label}",
                "stream_key": f"{self.connection_id}:{rid}"}))
            return
        target = await resolve(KINDS["trades"], {"exchange": str(exchange), "symbol": str(symbol)},
                               self.caller, self.service.ownership)
        await self._stream(rid, action, target, "trade_update", _render_trade, None,
                           f"Streaming started for {label}")

    # orders -----------------------------------------------------------------------
    async def _order_target(self, exchange: str) -> Target:
        """Orders of ``order_status:{exchange}`` the caller may see."""
        if exchange.isdigit():
            return await resolve(KINDS["orders"], {"ex_id": int(exchange)}, self.caller,
                                 self.service.ownership)
        target = await resolve(KINDS["orders"], {}, self.caller, self.service.ownership)
        target.units = (sources.NAMED_ORDERS_UNIT,)
        inner = target.accepts
        target.accepts = lambda k, d: d.get("exchange") == exchange and (
            inner is None or inner(k, d))
        return target

    async def _visible_orders(self, exchange: str) -> list[dict[str, Any]]:
        target = await self._order_target(exchange)
        snap = (await self.service.read_snapshot(target)).result
        return [o for o in snap["orders"] if _in_hash(o, exchange)]

    async def _get_order_status(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        exchange, order_id = _need(p, "exchange", "order_id",
                                   message="exchange and order_id parameters required")
        try:
            orders = await self._visible_orders(str(exchange))
        except AccessError:
            orders = []
        for order in orders:
            if str(order.get("order_id")) == str(order_id):
                return order_result(order)
        raise CacheApiError("ORDER_NOT_FOUND", f"Order {order_id} not found", with_action=True)

    async def _get_queue_length(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        (exchange,) = _need(p, "exchange", message="exchange parameter required")
        orders = await self._visible_orders(str(exchange))
        return {"exchange": exchange, "queue_length": len(orders), "timestamp": _now_iso()}

    async def _stream_order_queue(self, rid: Any, action: str, p: dict[str, Any]) -> None:
        (exchange,) = _need(p, "exchange", message="exchange parameter required")
        target = await self._order_target(str(exchange))
        state = {"exchange": str(exchange), "ids": set()}

        def initial(sub: CacheApiSubscription, snap: dict[str, Any]) -> None:
            state["ids"] = {str(o.get("order_id")) for o in snap["orders"]
                            if _in_hash(o, str(exchange))}
            sub.conn.enqueue(jsonutil.dumps({
                "request_id": rid, "action": "queue_update",
                "result": {"stream_key": sub.stream_key_label, "exchange": exchange,
                           "queue_length": len(state["ids"]), "timestamp": _now_iso()}}))

        await self._stream(rid, action, target, "queue_update", _render_queue, state,
                           f"Streaming started for {exchange}", initial)

    # ohlcv ------------------------------------------------------------------------
    def _bars_target(self, p: dict[str, Any], message: str) -> Target:
        symbol, timeframe = _need(p, "symbol", "timeframe", message=message)
        symbol, timeframe = str(symbol), str(timeframe)
        # fullon_cache_api has no exchange: fullon's bar list is exchange-less too.
        return Target(KINDS["ohlcv"], f"cache_api:ohlcv:{symbol}:{timeframe}",
                      (sources.ohlcv_unit(symbol, timeframe),),
                      {"exchange": "", "symbol": symbol, "timeframe": timeframe})

    async def _get_latest_ohlcv_bars(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        target = self._bars_target(p, "symbol and timeframe parameters required")
        count = _int(p.get("count", 10), "count must be an integer")
        count = max(1, min(count, 1000))
        raw = await self.redis.lrange(
            self.prefix + sources.ohlcv_key(target.params["symbol"], target.params["timeframe"]),
            -count, -1)
        bars = [decode.lenient(b)[0] for b in raw]
        if not bars:
            raise CacheApiError("OHLCV_NOT_FOUND", "OHLCV data not found for "
                                f"{target.params['symbol']} {target.params['timeframe']}",
                                with_action=True)
        return {"symbol": target.params["symbol"], "timeframe": target.params["timeframe"],
                "bars": bars}

    async def _stream_ohlcv(self, rid: Any, action: str, p: dict[str, Any]) -> None:
        target = self._bars_target(p, "symbol and timeframe required")
        state: dict[str, Any] = {}

        def initial(sub: CacheApiSubscription, snap: dict[str, Any]) -> None:
            if snap["bars"]:
                state["last"] = snap["bars"][-1].get("timestamp")

        await self._stream(rid, action, target, "ohlcv_update", _render_bar, state,
                           f"Streaming started for {target.params['symbol']} "
                           f"{target.params['timeframe']}", initial)

    # process ----------------------------------------------------------------------
    def _admin(self) -> None:
        if not full_admin(self.caller):
            raise CacheApiError("FORBIDDEN", "process data is for admins only")

    async def _processes(self) -> list[dict[str, Any]]:
        self._admin()
        procs: list[dict[str, Any]] = await self.service.processes()
        return procs

    async def _get_system_health(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        procs = await self._processes()
        by_type: dict[str, int] = {}
        by_status: dict[str, int] = {}
        for proc in procs:
            by_type[str(proc.get("process_type"))] = by_type.get(str(proc.get("process_type")),
                                                                 0) + 1
            by_status[str(proc.get("status"))] = by_status.get(str(proc.get("status")), 0) + 1
        stale = sum(1 for x in procs if x["stale"])
        errors = sum(1 for x in procs if x.get("status") == "error")
        return {"healthy": stale == 0 and errors == 0, "total_processes": len(procs),
                "by_type": by_type, "by_status": by_status, "stale_processes": stale,
                "error_processes": errors}

    async def _get_active_processes(self, rid: Any, action: str, p: dict[str, Any]) -> Any:
        procs = await self._processes()
        ptype, component = p.get("process_type"), p.get("component")
        since = p.get("since_minutes")
        limit = None if since in (None, "") else _int(since, "since_minutes must be an int") * 60
        out = []
        for proc in procs:
            if ptype and proc.get("process_type") != ptype:
                continue
            if component and proc.get("component") != component:
                continue
            age = proc.get("heartbeat_age_s")
            if limit is not None and (age is None or age > limit):
                continue
            params = proc["params"] if isinstance(proc.get("params"), dict) else {}
            out.append({"process_id": proc.get("process_id"), "name": proc.get("component"),
                        "status": proc.get("status"), "pid": params.get("pid"),
                        "last_seen": proc.get("heartbeat")})
        return {"processes": out}

    async def _stream_process_health(self, rid: Any, action: str, p: dict[str, Any]) -> None:
        self._admin()
        target = Target(KINDS["process"], "cache_api:process", (sources.PROCESS_UNIT,),
                        {"process_type": None})
        state: set[str] = set()

        def initial(sub: CacheApiSubscription, snap: dict[str, Any]) -> None:
            state.update(str(x.get("process_id")) for x in snap["processes"]
                         if x.get("status") != "stopped")
            sub.conn.enqueue(jsonutil.dumps({
                "request_id": rid, "action": "process_health_update",
                "result": {"stream_key": sub.stream_key_label,
                           "active_processes": len(state), "timestamp": _now_iso()}}))

        await self._stream(rid, action, target, "process_health_update", _render_process,
                           state, "Streaming started for process health", initial)

