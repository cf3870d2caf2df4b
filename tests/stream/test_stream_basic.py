"""Every stream end to end: publisher -> Redis -> hub -> socket, snapshot then live."""

from __future__ import annotations

import asyncio

from tests.stream.support import (
    closed,
    connect,
    make_bot,
    make_exchange,
    publisher,
    recv,
    request,
    subscribe,
)


async def test_ticker_snapshot_then_live(client, make_account):
    """A ticker subscription gets the ack, a snapshot of the current ticks, then each change."""
    acct = await make_account()
    pub = publisher(client)
    await pub.ticker("kraken", "BTC/USD", {"price": 100.0})
    ws = await connect(client, acct.token)
    ack, snap = await subscribe(ws, {"stream": "tickers", "exchange": "kraken",
                                     "symbols": ["BTC/USD"]})
    assert ack["result"]["stream_key"] == "tickers:kraken:BTC/USD"
    assert snap["result"]["tickers"][0]["price"] == 100.0
    seq = await pub.ticker("kraken", "BTC/USD", {"price": 101.0})
    await pub.ticker("kraken", "ETH/USD", {"price": 5.0})  # filtered out
    await pub.ticker("kraken", "BTC/USD", {"price": 102.0})
    first = await recv(ws)
    assert first["action"] == "tickers_update" and first["seq"] == seq
    assert first["result"]["price"] == 101.0 and first["seq"] > snap["seq"]
    second = await recv(ws)
    assert second["result"]["price"] == 102.0 and second["seq"] > first["seq"]
    await ws.close()


async def test_legacy_set_ticker_reaches_subscribers(client, make_account, redis_client, settings):
    """A plain fullon_cache set_ticker (HSET + PUBLISH ticker_updates:...) is in the
    snapshot and is delivered live to ticker subscribers, sequenced by the gateway."""
    import json

    acct = await make_account()
    p = settings.redis_prefix
    await redis_client.hset(p + "tickers:binance", "ETH/USDT", json.dumps({"price": 1.5}))
    ws = await connect(client, acct.token)
    _ack, snap = await subscribe(ws, {"stream": "tickers", "exchange": "binance", "symbols": "*"})
    assert snap["result"]["tickers"][0]["price"] == 1.5
    tick = {"symbol": "ETH/USDT", "exchange": "binance", "price": 2.5}
    await redis_client.hset(p + "tickers:binance", "ETH/USDT", json.dumps(tick))
    await redis_client.publish(p + "ticker_updates:binance:ETH/USDT", json.dumps(tick))
    frame = await recv(ws)
    assert frame["action"] == "tickers_update"
    assert frame["result"]["price"] == 2.5 and frame["result"]["symbol"] == "ETH/USDT"
    assert isinstance(frame["seq"], int) and frame["seq"] > snap["seq"]
    await ws.close()


async def test_trades_ohlcv_process_end_to_end(client, make_account):
    """trades, ohlcv and process streams deliver snapshot then live changes from the publisher."""
    user = await make_account()
    admin = await make_account("admin")
    pub = publisher(client)
    await pub.trade("kraken", "BTC/USD", {"price": 1, "volume": 2, "side": "buy"})
    await pub.ohlcv("kraken", "BTC/USD", "1m", {"timestamp": 60_000, "open": 1, "high": 2,
                                                "low": 1, "close": 2, "vol": 3})
    await pub.process("tick", "tick-1", "running", "ok")
    ws = await connect(client, user.token)
    _a, snap = await subscribe(ws, {"stream": "trades", "exchange": "kraken", "symbol": "BTC/USD"})
    assert snap["result"]["trades"][0]["price"] == 1
    _a, snap = await subscribe(ws, {"stream": "ohlcv", "exchange": "kraken", "symbol": "BTC/USD",
                                    "timeframe": "1m"}, request_id="s2")
    assert snap["result"]["bars"][0]["close"] == 2
    await pub.trade("kraken", "BTC/USD", {"price": 3, "volume": 1, "side": "sell"})
    frame = await recv(ws)
    assert frame["action"] == "trades_update" and frame["result"]["price"] == 3
    await pub.ohlcv("kraken", "BTC/USD", "1m", {"timestamp": 60_000, "open": 1, "high": 4,
                                                "low": 1, "close": 4, "vol": 5})
    frame = await recv(ws)
    assert frame["action"] == "ohlcv_update" and frame["result"]["close"] == 4
    await ws.close()

    ws = await connect(client, admin.token)
    _a, snap = await subscribe(ws, {"stream": "process"})
    assert snap["result"]["processes"][0]["process_id"] == "tick-1"
    await pub.process("ohlcv", "ohlcv-1", "running")
    frame = await recv(ws)
    assert frame["action"] == "process_update" and frame["result"]["process_id"] == "ohlcv-1"
    await ws.close()


async def test_private_streams_end_to_end(client, make_account):
    """orders, accounts and bots deliver the owner's snapshot then live changes."""
    acct = await make_account()
    ex_id = await make_exchange(client, acct.user_id)
    bot_id = await make_bot(client, acct.user_id)
    pub = publisher(client)
    await pub.order(ex_id, {"order_id": "o1", "status": "open", "bot_id": bot_id})
    await pub.balances(ex_id, {"USD": {"free": 10}})
    await pub.bot_status(bot_id, {"status": "running"})
    ws = await connect(client, acct.token)
    _a, snap = await subscribe(ws, {"stream": "orders"})
    assert snap["result"]["orders"] == [{"order_id": "o1", "status": "open", "bot_id": bot_id,
                                         "ex_id": ex_id}]
    _a, snap = await subscribe(ws, {"stream": "accounts", "ex_id": ex_id}, request_id="s2")
    balances = snap["result"]["accounts"][0]["balances"]
    assert balances["USD"] == {"free": 10} and balances["date"].endswith("+00:00")  # fullon's
    _a, snap = await subscribe(ws, {"stream": "bots"}, request_id="s3")
    assert snap["result"]["bots"][0]["status"] == "running"
    await pub.order(ex_id, {"order_id": "o1", "status": "filled"})
    await pub.positions(ex_id, [{"symbol": "BTC/USD", "size": 1}])
    await pub.bot_status(bot_id, {"status": "stopped"})
    got = [await recv(ws) for _ in range(3)]
    assert [f["action"] for f in got] == ["orders_update", "accounts_update", "bots_update"]
    assert got[0]["result"]["status"] == "filled"
    # fullon's shape: keyed by symbol (size given -> volume), with a root timestamp
    assert got[1]["result"]["positions"]["BTC/USD"]["volume"] == 1
    assert "timestamp" in got[1]["result"]["positions"]
    assert got[2]["result"]["status"] == "stopped"
    assert got[0]["seq"] < got[1]["seq"] < got[2]["seq"]
    await ws.close()


async def test_fullon_action_names(client, make_account):
    """The fullon action names work: get_* answer once, stream_* subscribe."""
    acct = await make_account()
    ex_id = await make_exchange(client, acct.user_id)
    pub = publisher(client)
    await pub.ticker("kraken", "BTC/USD", {"price": 7})
    await pub.balances(ex_id, {"BTC": {"free": 1}})
    await pub.positions(ex_id, [{"symbol": "BTC/USD"}])
    await pub.order(ex_id, {"order_id": "x9", "status": "open"})
    ws = await connect(client, acct.token)
    reply = await request(ws, "get_ticker", {"exchange": "kraken", "symbol": "BTC/USD"})
    assert reply["success"] and reply["result"]["price"] == 7
    reply = await request(ws, "get_all_tickers", {"exchange": "kraken"})
    assert [t["symbol"] for t in reply["result"]] == ["BTC/USD"]
    reply = await request(ws, "get_balance", {"ex_id": ex_id})
    assert reply["result"]["BTC"] == {"free": 1} and "date" in reply["result"]
    reply = await request(ws, "get_positions", {"ex_id": ex_id})
    assert list(reply["result"]) == ["BTC/USD", "timestamp"]
    reply = await request(ws, "get_order_status", {"ex_id": ex_id, "order_id": "x9"})
    assert reply["result"]["status"] == "open"
    reply = await request(ws, "get_ticker", {"exchange": "kraken", "symbol": "NOPE/USD"})
    assert reply["success"] is False and reply["error_code"] == "NOT_FOUND"
    _a, snap = await subscribe(ws, {"exchange": "kraken", "symbols": ["BTC/USD"]},
                               action="stream_tickers", request_id="st")
    assert snap["stream_key"] == "tickers:kraken:BTC/USD"
    reply = await request(ws, "get_active_processes", {})
    assert reply["error_code"] == "FORBIDDEN"
    await ws.close()


async def test_bad_messages_get_error_codes_and_socket_stays_open(client, make_account):
    """Malformed JSON, unknown actions and bad params get an error_code reply; the socket
    stays usable."""
    acct = await make_account()
    ws = await connect(client, acct.token)
    await ws.send_str("{not json")
    assert (await recv(ws))["error_code"] == "MALFORMED_MESSAGE"
    await ws.send_str("[1, 2]")
    assert (await recv(ws))["error_code"] == "MALFORMED_MESSAGE"
    reply = await request(ws, "launch_rockets", {})
    assert reply["error_code"] == "INVALID_OPERATION"
    reply = await request(ws, "subscribe", {"stream": "tickers"})
    assert reply["error_code"] == "INVALID_PARAMS" and "exchange" in reply["error"]
    reply = await request(ws, "subscribe", {"stream": "ohlcv", "exchange": "k", "symbol": "A/B",
                                            "timeframe": "7m"})
    assert reply["error_code"] == "INVALID_PARAMS"
    reply = await request(ws, "subscribe", {"stream": "orders", "ex_id": "1"})
    assert reply["error_code"] == "INVALID_PARAMS"
    reply = await request(ws, "unsubscribe", {"stream_key": "tickers:nope:*"})
    assert reply["error_code"] == "NOT_FOUND"
    reply = await request(ws, "ping", {})
    assert reply["success"] is True and reply["result"] == "pong"
    await ws.close()


async def test_unsubscribe_stops_delivery(client, make_account):
    """After unsubscribe, changes on that stream are no longer sent to the socket."""
    acct = await make_account()
    pub = publisher(client)
    ws = await connect(client, acct.token)
    ack, _snap = await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    reply = await request(ws, "unsubscribe", {"stream_key": ack["result"]["stream_key"]},
                          request_id="u1")
    assert reply["success"] is True
    await pub.ticker("kraken", "BTC/USD", {"price": 1})
    assert (await request(ws, "ping", {}, request_id="p"))["result"] == "pong"
    await ws.close()


async def test_per_stream_endpoint_and_shared_connection_id(client, make_account):
    """/cache/ws/{stream}/{id} carries only that stream, and two sockets with the same
    connection_id are independent: closing one leaves the other streaming."""
    acct = await make_account()
    pub = publisher(client)
    path = "/api/v1/cache/ws/tickers/same-id"
    ws1 = await connect(client, acct.token, path=path)
    ws2 = await connect(client, acct.token, path=path)
    await subscribe(ws1, {"exchange": "kraken"})  # the path implies the stream
    await subscribe(ws2, {"stream": "tickers", "exchange": "kraken"})
    reply = await request(ws2, "subscribe", {"stream": "trades", "exchange": "kraken",
                                             "symbol": "BTC/USD"}, request_id="x")
    assert reply["error_code"] == "INVALID_OPERATION"
    await ws1.close()
    await pub.ticker("kraken", "BTC/USD", {"price": 42})
    frame = await recv(ws2)
    assert frame["result"]["price"] == 42
    await ws2.close()
    resp = await client.get("/api/v1/cache/ws/nonsense/1")
    assert resp.status == 404


async def test_per_stream_endpoint_implies_the_stream(client, make_account):
    """On /cache/ws/orders/{id} a subscribe without "stream" means the path's stream, and
    resumes with since (fullon_cache_api's own actions there: tests/fullon)."""
    acct = await make_account()
    ex_id = await make_exchange(client, acct.user_id)
    await publisher(client).order(ex_id, {"order_id": "1"})
    ws = await connect(client, acct.token, path="/api/v1/cache/ws/orders/c1")
    ack, snap = await subscribe(ws, {"ex_id": ex_id})
    assert ack["result"]["stream_key"] == f"orders:{ex_id}"
    await ws.close()
    ws = await connect(client, acct.token, path="/api/v1/cache/ws/orders/c1")
    await ws.send_json({"action": "subscribe", "request_id": 5,
                        "params": {"ex_id": ex_id, "since": snap["seq"]}})
    ack = await recv(ws)
    assert ack["success"] and ack["request_id"] == 5 and ack["result"]["recovered"] is True
    await ws.close()


async def test_more_fullon_get_actions(client, make_account):
    """get_latest_ohlcv_bars, get_bot_status (one and all), get_order_status lists, and the
    admin-only process actions answer from the current state."""
    acct = await make_account()
    admin = await make_account("admin")
    ex_id = await make_exchange(client, acct.user_id)
    bot_id = await make_bot(client, acct.user_id)
    pub = publisher(client)
    for minute in range(3):
        await pub.ohlcv("kraken", "BTC/USD", "1m", {"timestamp": minute * 60_000, "close": minute})
    await pub.bot_status(bot_id, {"status": "running"})
    await pub.order(ex_id, {"order_id": "a"})
    await pub.process("tick", "t1")
    ws = await connect(client, acct.token)
    reply = await request(ws, "get_latest_ohlcv_bars", {"exchange": "kraken", "symbol": "BTC/USD",
                                                        "timeframe": "1m", "count": 2})
    assert [b["close"] for b in reply["result"]] == [1, 2]
    reply = await request(ws, "get_bot_status", {"bot_id": bot_id})
    assert reply["result"]["status"] == "running"
    reply = await request(ws, "get_bot_status", {})
    assert len(reply["result"]) == 1
    reply = await request(ws, "get_order_status", {"ex_id": ex_id})
    assert [o["order_id"] for o in reply["result"]] == ["a"]
    reply = await request(ws, "get_order_status", {"ex_id": ex_id, "order_id": "zz"})
    assert reply["error_code"] == "NOT_FOUND"
    reply = await request(ws, "get_system_health", {})
    assert reply["error_code"] == "FORBIDDEN"
    await ws.send_bytes(b"\x00\x01")
    assert (await recv(ws))["error_code"] == "MALFORMED_MESSAGE"
    await ws.close()
    ws = await connect(client, admin.token)
    reply = await request(ws, "get_system_health", {})
    assert reply["result"] == {"status": "ok", "processes": 1, "stale": 0}
    reply = await request(ws, "get_active_processes", {"process_type": "tick"})
    assert reply["result"][0]["process_id"] == "t1"
    _a, snap = await subscribe(ws, {"process_type": "tick"}, action="stream_process_health")
    assert snap["result"]["processes"][0]["process_id"] == "t1"
    await pub.process("ohlcv", "o1")  # filtered out
    await pub.process("tick", "t1", "stopping")
    assert (await recv(ws))["result"]["status"] == "stopping"
    await ws.close()


async def test_protocol_edge_cases(client, make_account):
    """Bad request ids, non-object params, a duplicate subscription, comma-separated
    symbols and a symbol filter all get the documented answers."""
    acct = await make_account()
    ws = await connect(client, acct.token)
    await ws.send_json({"action": "ping", "request_id": True})
    assert (await recv(ws))["error_code"] == "MALFORMED_MESSAGE"
    await ws.send_json({"action": "ping", "request_id": "x", "params": [1]})
    reply = await recv(ws)
    assert reply["error_code"] == "MALFORMED_MESSAGE" and reply["request_id"] == "x"
    await ws.send_json({"action": 5})
    assert (await recv(ws))["error_code"] == "MALFORMED_MESSAGE"
    ack, _ = await subscribe(ws, {"stream": "tickers", "exchange": "k", "symbols": "B/C,A/B"})
    assert ack["result"]["stream_key"] == "tickers:k:A/B,B/C"
    reply = await request(ws, "subscribe", {"stream": "tickers", "exchange": "k",
                                            "symbols": ["A/B", "B/C"]}, request_id="d")
    assert reply["result"] == {"stream_key": "tickers:k:A/B,B/C", "already": True}
    ack, _ = await subscribe(ws, {"stream": "tickers", "exchange": "k", "symbol": "A/B"},
                             request_id="one")
    assert ack["result"]["stream_key"] == "tickers:k:A/B"
    for bad in ({"stream": "tickers", "exchange": "k", "symbols": []},
                {"stream": "tickers", "exchange": "k", "symbols": ["bad symbol!"]},
                {"stream": "tickers", "exchange": "k", "symbols": 5},
                {"stream": "tickers", "exchange": "k*", "symbols": "*"},
                {"stream": "tickers", "exchange": "k", "symbol": "A/B", "symbols": "*"},
                {"stream": "nope"}):
        reply = await request(ws, "subscribe", bad, request_id="bad")
        assert reply["error_code"] == "INVALID_PARAMS", bad
    await ws.close()


async def test_shutdown_closes_sockets_1001(client, make_account):
    """Stopping the server closes open stream sockets with 1001."""
    import aiohttp

    acct = await make_account()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(client.make_url("/api/v1/cache/ws"),
                                      params={"token": acct.token}, autoclose=False)
        await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
        closing = asyncio.ensure_future(closed(ws))
        await client.server.close()
        code, reason = await closing
        assert code == 1001 and reason == "server shutdown"


async def test_long_stream_key_can_be_unsubscribed(client, make_account):
    """A ticker subscription over many symbols (a stream key far over 300 characters)
    can be unsubscribed with the key it was given."""
    acct = await make_account()
    ws = await connect(client, acct.token)
    symbols = [f"SYMBOL{i:03d}-LONG-NAME/USD" for i in range(40)]
    ack, _snap = await subscribe(ws, {"stream": "tickers", "exchange": "kraken",
                                      "symbols": symbols})
    key = ack["result"]["stream_key"]
    assert len(key) > 300
    reply = await request(ws, "unsubscribe", {"stream_key": key}, request_id="u")
    assert reply["success"] is True and reply["result"]["stream_key"] == key
    await ws.close()


async def test_symbol_filtered_ticker_reads(client, make_account):
    """Reading some tickers of an exchange (get_ticker, a symbols subscription) returns
    just those that exist, in symbol order."""
    acct = await make_account()
    pub = publisher(client)
    for sym in ("ETH/USD", "BTC/USD", "XRP/USD"):
        await pub.ticker("kraken", sym, {"symbol": sym})
    ws = await connect(client, acct.token)
    reply = await request(ws, "get_ticker", {"exchange": "kraken", "symbol": "XRP/USD"})
    assert reply["result"]["symbol"] == "XRP/USD"
    _ack, snap = await subscribe(ws, {"stream": "tickers", "exchange": "kraken",
                                      "symbols": ["XRP/USD", "NOPE/USD", "BTC/USD"]})
    assert [t["symbol"] for t in snap["result"]["tickers"]] == ["BTC/USD", "XRP/USD"]
    await ws.close()
