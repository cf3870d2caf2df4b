"""Regressions from the stream code review: resume overflow, conflation bounds, long
stream keys, the heartbeat contract, the scope of an in-band refresh."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType

from fullon_gateway.keys import AUTH, METRICS, SOCKETS
from tests.stream.support import closed, connect, make_exchange, publisher, recv, request, subscribe

BIG = "x" * 40_000  # large frames fill the socket buffers quickly


def _metric(client, name: str) -> float:
    total = 0.0
    for family in client.app[METRICS].registry.collect():
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total


async def _login(client, email: str) -> str:
    await client.app[AUTH].create_user(email, "pw-pw-pw-pw", "t")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": email, "password": "pw-pw-pw-pw"})
    return str((await resp.json())["access_token"])


async def test_resume_larger_than_the_queue_gets_a_fresh_snapshot(app_client, make_settings):
    """A resume whose replay would not fit in the socket's queue is answered with a fresh
    snapshot (recovered: false) instead of a 1013 close; live updates then continue."""
    client = await app_client(make_settings(ws_queue_limit=20, history_len=50))
    token = await _login(client, "resume@example.com")
    user_id = (await client.app[AUTH].authenticate(token)).user_id
    ex_id = await make_exchange(client, user_id)
    pub = publisher(client)
    ws = await connect(client, token)
    await subscribe(ws, {"stream": "orders", "ex_id": ex_id})
    await pub.order(ex_id, {"order_id": "a", "n": 0})
    last = (await recv(ws))["seq"]
    await ws.close()
    for i in range(1, 41):  # 40 missed changes, all still in history, queue room 20
        await pub.order(ex_id, {"order_id": f"o{i}", "n": i})
    ws = await connect(client, token)
    await ws.send_json({"action": "subscribe", "request_id": "r",
                        "params": {"stream": "orders", "ex_id": ex_id, "since": last}})
    ack = await recv(ws)
    assert ack["success"] is True and ack["result"]["recovered"] is False, ack
    snap = await recv(ws)
    assert snap["snapshot"] is True and snap["recovered"] is False
    assert len(snap["result"]["orders"]) == 41
    await pub.order(ex_id, {"order_id": "live", "n": 99})
    frame = await recv(ws)
    assert frame["action"] == "orders_update" and frame["result"]["n"] == 99
    assert frame["seq"] > snap["seq"]
    assert not ws.closed
    await ws.close()


async def test_resume_that_fits_still_replays(app_client, make_settings):
    """A resume whose replay fits in the queue is still a replay (recovered: true)."""
    client = await app_client(make_settings(ws_queue_limit=20, history_len=50))
    token = await _login(client, "resume2@example.com")
    user_id = (await client.app[AUTH].authenticate(token)).user_id
    ex_id = await make_exchange(client, user_id)
    pub = publisher(client)
    last = await pub.order(ex_id, {"order_id": "a", "n": 0})
    for i in range(1, 6):
        await pub.order(ex_id, {"order_id": "a", "n": i})
    ws = await connect(client, token)
    await ws.send_json({"action": "subscribe", "request_id": "r",
                        "params": {"stream": "orders", "ex_id": ex_id, "since": last}})
    ack = await recv(ws)
    assert ack["result"]["recovered"] is True
    ns = [(await recv(ws))["result"]["n"] for _ in range(5)]
    assert ns == [1, 2, 3, 4, 5]
    await ws.close()


async def test_conflation_keeps_the_queue_bounded(app_client, make_settings):
    """A client that never reads gets conflated market data: the queue (blanked slots
    included) never grows past twice ws_queue_limit, and the conflation counter grows."""
    limit = 20
    client = await app_client(make_settings(ws_queue_limit=limit))
    token = await _login(client, "conflate@example.com")
    ws = await connect(client, token)
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    (conn,) = list(client.app[SOCKETS])
    pub = publisher(client)
    longest = 0
    for i in range(600):  # the client reads nothing meanwhile
        await pub.ticker("kraken", f"S{i % 4}/USD", {"price": i, "pad": BIG})
        longest = max(longest, conn.backlog)
    assert _metric(client, "gateway_ws_messages_conflated_total") > 100
    assert longest <= 2 * limit + 1, longest
    assert not conn.closing
    await ws.close()


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


async def test_refresh_refuses_a_credential_without_read_scope(client, make_account):
    """The in-band refresh/auth refuses a credential of the same user that lacks the read
    scope (connect would refuse it too), and the socket keeps its current credential."""
    acct = await make_account()
    resp = await client.post("/api/v1/orm/api_keys/me", json={"name": "t", "scopes": ["trade"]},
                             headers=acct.headers)
    trade_key = (await resp.json())["key"]
    ws = await connect(client, acct.token)
    for action in ("refresh", "auth"):
        reply = await request(ws, action, {"token": trade_key}, request_id=action)
        assert reply["success"] is False and reply["error_code"] == "FORBIDDEN", reply
    reply = await request(ws, "refresh", {"token": acct.token}, request_id="ok")
    assert reply["success"] is True
    await ws.close()


async def test_client_answering_pings_stays_open(app_client, make_settings):
    """A client that answers the server's pings (and sends nothing else) stays open well
    past three heartbeat periods."""
    hb = 0.3
    client = await app_client(make_settings(ws_heartbeat=hb))
    token = await _login(client, "hb-ok@example.com")
    ws = await client.ws_connect("/api/v1/cache/ws", params={"token": token}, autoping=False,
                                 autoclose=False)
    loop = asyncio.get_running_loop()
    until = loop.time() + 4 * hb
    pings = 0
    while (left := until - loop.time()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        assert msg.type == WSMsgType.PING, (msg.type, msg.data, msg.extra)
        pings += 1
        await ws.pong(msg.data)
    assert pings >= 2  # pinged every heartbeat while otherwise silent
    assert not ws.closed
    assert (await request(ws, "ping", {}, request_id="p"))["result"] == "pong"
    await ws.close()


async def test_silent_client_is_closed_after_two_heartbeats(app_client, make_settings):
    """A client that never answers pings is pinged after ws_heartbeat and closed 1001
    "heartbeat timeout" once silent for twice ws_heartbeat, not earlier."""
    hb = 0.3
    client = await app_client(make_settings(ws_heartbeat=hb))
    token = await _login(client, "hb-silent@example.com")
    loop = asyncio.get_running_loop()
    ws = await client.ws_connect("/api/v1/cache/ws", params={"token": token}, autoping=False,
                                 autoclose=False)
    opened = loop.time()
    pings = 0
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type == WSMsgType.PING:
            pings += 1
            continue
        break
    elapsed = loop.time() - opened
    assert pings >= 1
    assert msg.type == WSMsgType.CLOSE, msg
    assert (ws.close_code, msg.extra) == (1001, "heartbeat timeout")
    assert elapsed >= 2 * hb - 0.05, elapsed
    await ws.close()


async def test_silent_socket_is_closed_even_if_it_never_reads(app_client, make_settings):
    """A client that reads nothing at all (so never answers pings) is closed by the
    heartbeat: the server drops it from its registry within a few heartbeat periods."""
    hb = 0.3
    client = await app_client(make_settings(ws_heartbeat=hb))
    token = await _login(client, "hb-dead@example.com")
    ws = await client.ws_connect("/api/v1/cache/ws", params={"token": token}, autoping=False,
                                 autoclose=False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not list(client.app[SOCKETS]):
        assert loop.time() < deadline
        await asyncio.sleep(0.02)
    (conn,) = list(client.app[SOCKETS])
    while not conn.closing:
        assert loop.time() < deadline, "never closed"
        await asyncio.sleep(0.02)
    assert conn.close_code == 1001
    assert await closed(ws) == (1001, "heartbeat timeout")


async def test_resume_after_a_full_history_at_default_settings(client, make_account):
    """The reviewer's case at default settings: 1000 trades published while away, then a
    resume with since -> a fresh snapshot (recovered: false), not a 1013 close."""
    acct = await make_account()
    pub = publisher(client)
    last = await pub.trade("kraken", "BTC/USD", {"n": 0})
    for i in range(1, 1001):
        await pub.trade("kraken", "BTC/USD", {"n": i})
    ws = await connect(client, acct.token)
    await ws.send_json({"action": "subscribe", "request_id": "r",
                        "params": {"stream": "trades", "exchange": "kraken",
                                   "symbol": "BTC/USD", "since": last}})
    ack = await recv(ws)
    assert ack["success"] is True and ack["result"]["recovered"] is False, ack
    snap = await recv(ws)
    assert snap["snapshot"] is True and snap["result"]["trades"][-1]["n"] == 1000
    await pub.trade("kraken", "BTC/USD", {"n": 1001})
    assert (await recv(ws))["result"]["n"] == 1001
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
