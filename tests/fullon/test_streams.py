"""Every stream from unmodified fullon writers: snapshot, live with seq, resume with
since, and isolation between users (the real app on its own Redis, fullon's commands
from tests/fullon/writer.py, real WebSocket clients)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from tests.fullon.writer import FullonWriter
from tests.stream.support import connect, make_bot, make_exchange, recv, request, subscribe

Write = Callable[[int], Awaitable[Any]]


async def updates(ws: Any, n: int) -> list[dict[str, Any]]:
    """The next ``n`` change frames (no replies, no snapshots)."""
    out: list[dict[str, Any]] = []
    while len(out) < n:
        frame = await recv(ws)
        if "success" in frame or frame.get("snapshot"):
            continue
        out.append(frame)
    return out


async def check_row(client: Any, token: str, params: dict[str, Any], write: Write,
                    per_write: int = 1) -> tuple[dict[str, Any], list[dict[str, Any]],
                                                 list[dict[str, Any]]]:
    """write(0) before subscribing (in the snapshot), write(1) live with a seq above the
    snapshot's, then write(2) and write(3) while disconnected: a resume with ``since``
    replays exactly those (recovered: true), seqs increasing, none twice.

    A witness socket subscribed throughout sees each write's change before the next
    write is made: the sequencer compares states, so two writes to one value that no
    step saw apart are one change (docs/streams.md), which is not what this checks."""
    witness = await connect(client, token)
    await write(0)
    await subscribe(witness, params, request_id="w")
    ws = await connect(client, token)
    _ack, snap = await subscribe(ws, params)
    await write(1)
    live = await updates(ws, per_write)
    await updates(witness, per_write)
    assert all(isinstance(f["seq"], int) and f["seq"] > snap["seq"] for f in live)
    last = live[-1]["seq"]
    await ws.close()
    seen = []
    for i in (2, 3):
        await write(i)
        seen += await updates(witness, per_write)
    ws = await connect(client, token)
    ack = await request(ws, "subscribe", {**params, "since": last})
    assert ack["success"] and ack["result"]["recovered"] is True, ack
    replayed = await updates(ws, 2 * per_write)
    assert all(f.get("recovered") is True for f in replayed)
    seqs = [f["seq"] for f in replayed]
    assert seqs == sorted(set(seqs)) and seqs[0] > last
    assert seqs == [f["seq"] for f in seen], "the replay is what was live, same seqs"
    await ws.close()
    await witness.close()
    return snap, live, replayed


async def test_tickers_row(fclient: Any, faccount: Any, writer: FullonWriter) -> None:
    """tickers: fullon's set_ticker is in the snapshot, live with a seq, resumable."""
    user = await faccount()

    async def write(i: int) -> None:
        # A symbol per write: tickers conflate per symbol, also in a replay.
        await writer.set_ticker("kraken", f"C{i}/USD", 100.0 + i)

    snap, live, replayed = await check_row(
        fclient, user.token, {"stream": "tickers", "exchange": "kraken", "symbols": "*"}, write)
    assert snap["result"]["tickers"][0]["price"] == 100.0
    assert snap["result"]["tickers"][0]["exchange"] == "kraken"
    assert live[0]["result"]["price"] == 101.0 and live[0]["result"]["symbol"] == "C1/USD"
    assert [f["result"]["price"] for f in replayed] == [102.0, 103.0]


async def test_orders_row_and_isolation(fclient: Any, faccount: Any,
                                        writer: FullonWriter) -> None:
    """orders: save_order_data into order_status:{ex_id} reaches its owner with a seq;
    another user's all-my-orders subscription never shows it."""
    owner, other = await faccount(), await faccount()
    ex_id = await make_exchange(fclient, owner.user_id)
    await make_exchange(fclient, other.user_id, "other")
    ws_other = await connect(fclient, other.token)
    _a, snap_other = await subscribe(ws_other, {"stream": "orders"})

    async def write(i: int) -> None:
        await writer.save_order_data(ex_id, {"order_id": f"o{i}", "status": "open",
                                             "symbol": "BTC/USD", "volume": 1.0 + i})

    snap, live, replayed = await check_row(fclient, owner.token, {"stream": "orders"}, write)
    assert [o["order_id"] for o in snap["result"]["orders"]] == ["o0"]
    assert snap["result"]["orders"][0]["ex_id"] == ex_id
    assert live[0]["result"]["order_id"] == "o1" and live[0]["result"]["volume"] == 2.0
    assert [f["result"]["order_id"] for f in replayed] == ["o2", "o3"]
    assert snap_other["result"]["orders"] == []
    reply = await request(ws_other, "ping", {})  # everything sent before it has arrived
    assert reply["result"] == "pong"
    await ws_other.close()


async def test_orders_keyed_by_exchange_name_reach_the_account_owner_only(
        fclient: Any, faccount: Any, writer: FullonWriter) -> None:
    """save_order into order_status:{exchange name}: the order names its ex_id, so it
    reaches that account's owner (snapshot and live), never another user."""
    owner, other = await faccount(), await faccount()
    ex_id = await make_exchange(fclient, owner.user_id)
    await writer.save_order("kraken", {"order_id": "n0", "ex_id": ex_id, "status": "open"})
    await writer.save_order("kraken", {"order_id": "x0", "ex_id": 99999, "status": "open"})
    ws = await connect(fclient, owner.token)
    _a, snap = await subscribe(ws, {"stream": "orders"})
    assert [o["order_id"] for o in snap["result"]["orders"]] == ["n0"]
    assert snap["result"]["orders"][0]["exchange"] == "kraken"
    ws2 = await connect(fclient, other.token)
    _a, snap2 = await subscribe(ws2, {"stream": "orders"})
    assert snap2["result"]["orders"] == []
    await writer.save_order("kraken", {"order_id": "x1", "ex_id": 99999, "status": "open"})
    await writer.save_order("kraken", {"order_id": "n1", "ex_id": ex_id, "status": "filled"})
    (frame,) = await updates(ws, 1)
    assert frame["result"]["order_id"] == "n1" and frame["result"]["status"] == "filled"
    assert (await request(ws2, "ping", {}))["result"] == "pong"
    await ws.close()
    await ws2.close()


async def test_an_expired_order_hash_is_a_removal_in_sequence(
        fclient: Any, faccount: Any, writer: FullonWriter, fredis: aioredis.Redis) -> None:
    """fullon expires the whole order_status hash an hour after one cancel: when it goes,
    subscribers get each order as deleted, in seq order, not silence."""
    owner = await faccount()
    ex_id = await make_exchange(fclient, owner.user_id)
    await writer.save_order_data(ex_id, {"order_id": "a", "status": "open"})
    ws = await connect(fclient, owner.token)
    _a, snap = await subscribe(ws, {"stream": "orders", "ex_id": ex_id})
    await writer.save_order_data(ex_id, {"order_id": "b", "status": "canceled"})
    (canceled,) = await updates(ws, 1)
    assert canceled["result"]["status"] == "canceled"
    assert 0 < await fredis.ttl(f"order_status:{ex_id}") <= 3600
    await fredis.pexpire(f"order_status:{ex_id}", 1)  # the hour, shortened
    gone = await updates(ws, 2)
    assert [(f["result"]["order_id"], f["result"].get("deleted")) for f in gone] == [
        ("a", True), ("b", True)]
    assert snap["seq"] < canceled["seq"] < gone[0]["seq"] < gone[1]["seq"]
    await ws.close()


async def test_accounts_row_and_isolation(fclient: Any, faccount: Any,
                                          writer: FullonWriter) -> None:
    """accounts: upsert_user_account (with its date) and upsert_positions (keyed by
    symbol, root timestamp) stream to the owner; another user gets NOT_FOUND."""
    owner, other = await faccount(), await faccount()
    ex_id = await make_exchange(fclient, owner.user_id)

    async def write(i: int) -> None:
        if i % 2 == 0:
            await writer.upsert_user_account(ex_id, {"BTC": {"total": 1.0 + i, "free": 0.5,
                                                             "used": 0.5}})
        else:
            await writer.upsert_positions(ex_id, [{"symbol": "BTC/USD", "volume": 0.1 * i}])

    snap, live, replayed = await check_row(fclient, owner.token, {"stream": "accounts"}, write)
    account = snap["result"]["accounts"][0]
    assert account["ex_id"] == ex_id and account["balances"]["BTC"]["total"] == 1.0
    assert account["balances"]["date"].endswith("+00:00")
    assert live[0]["result"]["kind"] == "positions"
    positions = live[0]["result"]["positions"]
    assert positions["BTC/USD"]["volume"] == 0.1 and isinstance(positions["timestamp"], str)
    assert [f["result"]["kind"] for f in replayed] == ["balances", "positions"]
    ws = await connect(fclient, other.token)
    reply = await request(ws, "subscribe", {"stream": "accounts", "ex_id": ex_id})
    assert reply["error_code"] == "NOT_FOUND"
    await ws.close()


async def test_bots_row_and_isolation(fclient: Any, faccount: Any,
                                      writer: FullonWriter) -> None:
    """bots: update_bot (a dict keyed by feed) streams with bot_id added; another user's
    all-my-bots subscription never shows it."""
    owner, other = await faccount(), await faccount()
    bot_id = await make_bot(fclient, owner.user_id)
    await make_bot(fclient, other.user_id, "theirs")

    async def write(i: int) -> None:
        await writer.update_bot(bot_id, {"0": {"status": "running", "roi": i}})

    snap, live, replayed = await check_row(fclient, owner.token, {"stream": "bots"}, write)
    bot = snap["result"]["bots"][0]
    assert bot["bot_id"] == bot_id and bot["0"]["roi"] == 0 and "timestamp" in bot["0"]
    assert live[0]["result"]["0"]["roi"] == 1 and live[0]["result"]["bot_id"] == bot_id
    assert [f["result"]["0"]["roi"] for f in replayed] == [2, 3]
    ws = await connect(fclient, other.token)
    _a, snap_other = await subscribe(ws, {"stream": "bots"})
    assert snap_other["result"]["bots"] == []
    await ws.close()


async def test_trades_row_never_consumes_the_queue(fclient: Any, faccount: Any,
                                                   writer: FullonWriter,
                                                   fredis: aioredis.Redis) -> None:
    """trades: push_trade onto fullon's queue streams with its BASE/QUOTE symbol and a
    seq; the queue's length is what fullon's writes made it (the gateway only reads)."""
    user = await faccount()

    async def write(i: int) -> None:
        await writer.push_trade("kraken", {"trade_id": i, "symbol": "BTC/USD", "side": "buy",
                                           "price": 10.0 + i, "volume": 1.0})

    snap, live, replayed = await check_row(
        fclient, user.token, {"stream": "trades", "exchange": "kraken", "symbol": "BTC/USD"},
        write)
    assert [t["trade_id"] for t in snap["result"]["trades"]] == [0]
    assert live[0]["result"]["trade_id"] == 1 and live[0]["result"]["symbol"] == "BTC/USD"
    assert [f["result"]["trade_id"] for f in replayed] == [2, 3]
    assert await fredis.llen("trades:kraken:BTCUSD") == 4


async def test_ohlcv_row(fclient: Any, faccount: Any, writer: FullonWriter) -> None:
    """ohlcv: update_ohlcv_bars (RPUSH + LTRIM of [ts,o,h,l,c,v]) streams as bars."""
    user = await faccount()

    async def write(i: int) -> None:
        await writer.update_ohlcv_bars("BTC/USD", "1m", [[60 * i, 1.0, 2.0, 0.5, 1.5, 10.0 + i]])

    snap, live, replayed = await check_row(
        fclient, user.token,
        {"stream": "ohlcv", "exchange": "kraken", "symbol": "BTC/USD", "timeframe": "1m"}, write)
    assert snap["result"]["bars"] == [{"symbol": "BTC/USD", "timeframe": "1m", "timestamp": 0,
                                       "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5,
                                       "vol": 10.0}]
    assert live[0]["result"]["timestamp"] == 60 and live[0]["result"]["vol"] == 11.0
    assert [f["result"]["timestamp"] for f in replayed] == [120, 180]


async def test_process_row_admin_only(fclient: Any, faccount: Any,
                                      writer: FullonWriter) -> None:
    """process: ProcessCache register/update stream to admins; stop_process is the
    stopped record then its removal from the registry; users are refused."""
    admin, user = await faccount("admin"), await faccount()
    pids: list[str] = []

    async def write(i: int) -> None:
        # A process per write: the process stream conflates per process id.
        pids.append(await writer.register_process("tick", f"kraken:C{i}/USD",
                                                  {"exchange": "kraken"}, f"round {i}"))

    snap, live, replayed = await check_row(fclient, admin.token, {"stream": "process"}, write)
    proc = snap["result"]["processes"][0]
    assert proc["process_id"] == pids[0] and proc["component"] == "kraken:C0/USD"
    assert live[0]["result"]["message"] == "round 1"
    assert [f["result"]["message"] for f in replayed] == ["round 2", "round 3"]
    ws = await connect(fclient, admin.token)
    await subscribe(ws, {"stream": "process"})
    await writer.update_process(pids[0], "running", "still here")
    (updated,) = await updates(ws, 1)
    assert updated["result"]["message"] == "still here"
    await writer.stop_process(pids[0])
    stopped, removed = await updates(ws, 2)
    assert stopped["result"]["status"] == "stopped"
    assert removed["result"] == {"process_id": pids[0], "process_type": "tick",
                                 "status": "removed", "deleted": True}
    await ws.close()
    ws = await connect(fclient, user.token)
    reply = await request(ws, "subscribe", {"stream": "process"})
    assert reply["error_code"] == "FORBIDDEN"
    await ws.close()


async def test_services_and_health_show_fullon_registry(fclient: Any, faccount: Any,
                                                        writer: FullonWriter,
                                                        fredis: aioredis.Redis) -> None:
    """/api/v1/services lists ProcessCache's processes (type, component, status, message,
    heartbeat age); one without a heartbeat for 5 minutes is stale and /health counts it;
    the keyspace flags the gateway set are reported."""
    import json

    admin = await faccount("admin")
    pid = await writer.register_process("ohlcv", "kraken:BTC/USD")
    old = {"process_id": "bot:b1:1.0", "process_type": "bot", "component": "b1",
           "params": {}, "status": "running", "message": "m",
           "created_at": "2020-01-01T00:00:00+00:00", "updated_at": "2020-01-01T00:00:00+00:00",
           "heartbeat": "2020-01-01T00:00:00+00:00"}
    await fredis.execute_command("SETEX", "process:data:bot:b1:1.0", 86400, json.dumps(old))
    await fredis.hset("process:active:bot", "bot:b1:1.0", old["heartbeat"])
    resp = await fclient.get("/api/v1/services", headers=admin.headers)
    items = {i["process_id"]: i for i in (await resp.json())["items"]}
    fresh = items[pid]
    assert (fresh["process_type"], fresh["component"], fresh["stale"]) == (
        "ohlcv", "kraken:BTC/USD", False)
    assert fresh["message"] == "Process kraken:BTC/USD registered"
    assert items["bot:b1:1.0"]["stale"] is True and items["bot:b1:1.0"]["status"] == "stale"
    body = await (await fclient.get("/health")).json()
    assert body["checks"]["processes"] == {"ok": True, "total": 2, "stale": 1}
    fullon = body["checks"]["fullon"]
    assert fullon["ok"] is True and fullon["notifications"] == "configured"
    flags = (await fredis.config_get("notify-keyspace-events"))["notify-keyspace-events"]
    assert set("KEg$lhxe") <= set(flags)


async def test_a_nan_value_is_null_and_counted(fclient: Any, faccount: Any,
                                              writer: FullonWriter) -> None:
    """fullon writes NaN as a bare token: the snapshot still works (null, the other
    values kept), the live change says null, and the metric counts them."""
    user = await faccount()
    await writer.set_ticker("kraken", "ETH/USD", math.nan, bid=1.0)
    await writer.set_ticker("kraken", "BTC/USD", 5.0)
    ws = await connect(fclient, user.token)
    _a, snap = await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    by_symbol = {t["symbol"]: t for t in snap["result"]["tickers"]}
    assert by_symbol["ETH/USD"]["price"] is None and by_symbol["ETH/USD"]["bid"] == 1.0
    assert by_symbol["BTC/USD"]["price"] == 5.0
    await writer.set_ticker("kraken", "ETH/USD", math.inf, bid=2.0)
    (frame,) = await updates(ws, 1)
    assert frame["result"]["price"] is None and frame["result"]["bid"] == 2.0
    await ws.close()
    text = await (await fclient.get("/metrics")).text()
    assert 'gateway_fullon_nonfinite_values_total{stream="tickers"}' in text
    count = next(float(line.split()[-1]) for line in text.splitlines()
                 if line.startswith('gateway_fullon_nonfinite_values_total{stream="tickers"}'))
    assert count >= 3  # NaN + NaN in last (snapshot) and Infinity twice live
