"""fullon's stored values -> stream data: lenient about NaN, faithful to fullon's shapes.

fullon_cache writes Python ``json.dumps`` output, so ``NaN``, ``Infinity`` and
``-Infinity`` can appear as bare tokens in any value (FULLON_CACHE.md 1.3). They are
read as ``null`` and counted (``gateway_fullon_nonfinite_values_total``); the other
values of the same object are kept. A value that is not JSON at all is passed on as
its text under ``value`` rather than failing a snapshot.

Values pass through field for field; the gateway only adds what identifies the unit:
``exchange``/``symbol`` (tickers, trades), ``ex_id``/``order_id`` (orders),
``ex_id``/``kind`` (accounts), ``bot_id`` (bots), ``process_id``/``process_type``
(process). A removal (``op: del``) is the identity plus ``"deleted": true``.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import orjson

from fullon_gateway.stream.fullon.sources import NAMED_ORDERS_UNIT


class Decoded(NamedTuple):
    stream: str
    key: str | None  # conflation / identity key within the unit
    data: dict[str, Any]
    nonfinite: int


def lenient(text: str | bytes | None) -> tuple[Any, int]:
    """(value, how many NaN/Infinity tokens were read as None); the text itself when
    it is not JSON."""
    if text is None:
        return None, 0
    try:
        return orjson.loads(text), 0
    except orjson.JSONDecodeError:
        pass
    found = 0

    def nonfinite(_token: str) -> None:
        nonlocal found
        found += 1
        return None

    try:
        return json.loads(text, parse_constant=nonfinite), found
    except ValueError:
        return (text.decode("utf-8", "replace") if isinstance(text, bytes) else text), 0


def _obj(value: Any) -> dict[str, Any]:
    # Every caller passes a value it has just parsed: it is shaped in place, not copied
    # (the ticker path runs once per change).
    return value if type(value) is dict else {"value": value}


def _int_or(text: str) -> int | str:
    return int(text) if text.isdigit() else text


# -- one function per source: (key, data) from fullon's value -------------------------
def ticker(exchange: str, symbol: str, value: Any) -> dict[str, Any]:
    data = _obj(value)
    data["exchange"] = exchange
    data["symbol"] = symbol
    return data


def order(owner: str, field: str, value: Any) -> dict[str, Any]:
    data = _obj(value)
    if owner.isdigit():
        data["ex_id"] = int(owner)
    else:
        # order_status:{exchange name}: the order names its account (ex_id/bot_id);
        # the exchange name is kept so it can be told apart from the numeric form.
        data.setdefault("exchange", owner)
    data["order_id"] = field
    return data


def balances(ex_id: str, value: Any) -> dict[str, Any]:
    return {"ex_id": _int_or(ex_id), "kind": "balances", "balances": value}


def positions(ex_id: str, value: Any) -> dict[str, Any]:
    return {"ex_id": _int_or(ex_id), "kind": "positions", "positions": value}


def bot(bot_id: str, value: Any) -> dict[str, Any]:
    return {**_obj(value), "bot_id": _int_or(bot_id)}


def trade(exchange: str, stripped: str, value: Any) -> dict[str, Any]:
    data = _obj(value)
    data["exchange"] = exchange
    # The key strips '/', the trade keeps its own symbol (BASE/QUOTE).
    if not isinstance(data.get("symbol"), str):
        data["symbol"] = stripped
    return data


BAR_FIELDS = ("timestamp", "open", "high", "low", "close", "vol")


def bar(symbol: str, timeframe: str, value: Any) -> dict[str, Any]:
    """fullon keeps a bar as ``[ts, o, h, l, c, v]``; the stream's bar is an object."""
    data: dict[str, Any] = {"symbol": symbol, "timeframe": timeframe}
    if isinstance(value, list):
        data.update(zip(BAR_FIELDS, value, strict=False))
    else:
        data.update(_obj(value))
    return data


def process(value: Any, process_id: str) -> dict[str, Any]:
    data = _obj(value)
    data.setdefault("process_id", process_id)
    if "process_type" not in data and isinstance(data["process_id"], str):
        data["process_type"] = data["process_id"].split(":", 1)[0]
    return data


def decode_change(msg: dict[str, Any]) -> Decoded:
    """A sequencer message (sequencer.py) -> what the stream sends."""
    fkey: str = msg["fkey"]
    field: str = msg.get("field") or ""
    deleted = msg.get("op") == "del"
    value, bad = lenient(msg.get("raw"))
    if fkey.startswith("tickers:"):
        exchange = fkey[len("tickers:"):]
        data = ({"exchange": exchange, "symbol": field} if deleted
                else ticker(exchange, field, value))
        return _out("tickers", field, data, deleted, bad)
    if fkey.startswith("order_status:"):
        owner = fkey[len("order_status:"):]
        data = order(owner, field, {} if deleted else value)
        return _out("orders", field, data, deleted, bad)
    if fkey == "accounts":
        data = balances(field, None if deleted else value)
        return _out("accounts", f"balances:{field}", data, deleted, bad)
    if fkey == "account_positions":
        data = positions(field, None if deleted else value)
        return _out("accounts", f"positions:{field}", data, deleted, bad)
    if fkey == "bot_status":
        data = {"bot_id": _int_or(field)} if deleted else bot(field, value)
        return _out("bots", field, data, deleted, bad)
    if fkey.startswith("trades:"):
        _, exchange, stripped = fkey.split(":", 2)
        return _out("trades", None, trade(exchange, stripped, value), False, bad)
    if fkey.startswith("ohlcv:"):
        symbol, _, timeframe = fkey[len("ohlcv:"):].rpartition(":")
        data = bar(symbol, timeframe, value)
        return _out("ohlcv", str(data.get("timestamp")), data, False, bad)
    if fkey.startswith("process:data:"):
        pid = fkey[len("process:data:"):]
        data = process({} if deleted else value, pid)
        return _out("process", pid, data, deleted, bad)
    if fkey.startswith("process:active:"):
        # Only removals are sent from here: stop_process took it out of the registry.
        ptype = fkey[len("process:active:"):]
        data = {"process_id": field, "process_type": ptype, "status": "removed"}
        return _out("process", field, data, True, bad)
    raise ValueError(f"not a fullon key: {fkey!r}")


def _out(stream: str, key: str | None, data: dict[str, Any], deleted: bool,
         bad: int) -> Decoded:
    if deleted:
        data["deleted"] = True
    return Decoded(stream, key, data, bad)


def is_named_orders(unit: str) -> bool:
    return unit == NAMED_ORDERS_UNIT
