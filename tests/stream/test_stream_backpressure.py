"""Slow clients: market data conflates, private data closes 1013; batching; limits."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType

from fullon_gateway.keys import METRICS, SOCKETS
from tests.stream.support import (
    closed,
    connect,
    login,
    make_exchange,
    publisher,
    recv,
    request,
    subscribe,
)

BIG = "x" * 40_000  # large frames fill the socket buffers quickly


def _metric(client, name: str) -> float:
    total = 0.0
    for family in client.app[METRICS].registry.collect():
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total


async def test_market_data_is_conflated_for_a_slow_reader(app_client, make_settings,
                                                           make_account):
    """A client that stops reading tickers misses intermediate values but gets the latest,
    in seq order, and is never closed; the conflated counter grows."""
    client = await app_client(make_settings(ws_queue_limit=50))
    from fullon_gateway.keys import AUTH

    await client.app[AUTH].create_user("slow@example.com", "pw-pw-pw-pw", "s")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "slow@example.com", "password": "pw-pw-pw-pw"})
    token = (await resp.json())["access_token"]
    ws = await connect(client, token)
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    pub = publisher(client)
    total = 600
    for i in range(total):  # the client reads nothing meanwhile
        await pub.ticker("kraken", "BTC/USD", {"price": i, "pad": BIG})
    prices, seqs = [], []
    while not prices or prices[-1] != total - 1:
        frame = await recv(ws, wait=10)
        prices.append(frame["result"]["price"])
        seqs.append(frame["seq"])
    assert len(prices) < total, "nothing was conflated"
    assert prices == sorted(prices) and seqs == sorted(seqs)
    assert _metric(client, "gateway_ws_messages_conflated_total") > 0
    assert (await request(ws, "ping", {}, request_id="p"))["result"] == "pong"
    await ws.close()


async def test_private_stream_slow_consumer_is_closed_1013(app_client, make_settings):
    """A client that stops reading its orders is closed 1013 slow consumer once its queue
    passes the limit; nothing is silently dropped (it can resume with since)."""
    client = await app_client(make_settings(ws_queue_limit=20))
    from fullon_gateway.keys import AUTH

    user = await client.app[AUTH].create_user("slow2@example.com", "pw-pw-pw-pw", "s")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "slow2@example.com", "password": "pw-pw-pw-pw"})
    token = (await resp.json())["access_token"]
    ex_id = await make_exchange(client, user["user_id"])
    ws = await connect(client, token)
    await subscribe(ws, {"stream": "orders", "ex_id": ex_id})
    pub = publisher(client)
    for i in range(600):
        await pub.order(ex_id, {"order_id": "o", "n": i, "pad": BIG})
        if _metric(client, "gateway_ws_slow_consumer_closes_total") >= 1:
            break
    assert await closed(ws, wait=20) == (1013, "slow consumer")
    assert _metric(client, "gateway_ws_slow_consumer_closes_total") == 1
    assert _metric(client, "gateway_ws_messages_dropped_total") > 0


async def test_batch_mode_sends_arrays(client, make_account):
    """With ?batch=1, what is queued together (the ack and its snapshot) arrives as one
    JSON array frame, in order."""
    acct = await make_account()
    ws = await connect(client, acct.token, batch="1")
    await ws.send_json({"action": "subscribe", "request_id": "b",
                        "params": {"stream": "tickers", "exchange": "kraken"}})
    frame = await recv(ws)
    assert isinstance(frame, list)
    assert frame[0]["success"] is True and frame[1]["snapshot"] is True
    await ws.close()


async def test_oversized_frame_closes_1009(app_client, make_settings, make_account):
    """A client frame larger than ws_max_frame closes the socket with 1009."""
    client = await app_client(make_settings(ws_max_frame=1024))
    from fullon_gateway.keys import AUTH

    await client.app[AUTH].create_user("big@example.com", "pw-pw-pw-pw", "b")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "big@example.com", "password": "pw-pw-pw-pw"})
    ws = await connect(client, (await resp.json())["access_token"])
    await ws.send_str('{"action": "ping", "params": {"pad": "' + "y" * 2000 + '"}}')
    code, _reason = await closed(ws)
    assert code == 1009


async def test_rate_limit_then_close(app_client, make_settings):
    """Past ws_rate_limit messages per second the client gets RATE_LIMITED replies, and
    a client that keeps going is closed 1008."""
    client = await app_client(make_settings(ws_rate_limit=5))
    from fullon_gateway.keys import AUTH

    await client.app[AUTH].create_user("rate@example.com", "pw-pw-pw-pw", "r")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "rate@example.com", "password": "pw-pw-pw-pw"})
    ws = await connect(client, (await resp.json())["access_token"])
    for i in range(40):
        await ws.send_json({"action": "ping", "request_id": i, "params": {}})
    codes = []
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type != WSMsgType.TEXT:
            break
        codes.append(msg.json().get("error_code"))
    assert "RATE_LIMITED" in codes
    assert ws.close_code == 1008


async def test_subscription_limit(app_client, make_settings):
    """More than ws_max_subscriptions subscriptions on one socket is SUBSCRIPTION_LIMIT."""
    client = await app_client(make_settings(ws_max_subscriptions=2))
    from fullon_gateway.keys import AUTH

    await client.app[AUTH].create_user("lim@example.com", "pw-pw-pw-pw", "l")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "lim@example.com", "password": "pw-pw-pw-pw"})
    ws = await connect(client, (await resp.json())["access_token"])
    await subscribe(ws, {"stream": "tickers", "exchange": "a"}, request_id="1")
    await subscribe(ws, {"stream": "tickers", "exchange": "b"}, request_id="2")
    reply = await request(ws, "subscribe", {"stream": "tickers", "exchange": "c"}, "3")
    assert reply["error_code"] == "SUBSCRIPTION_LIMIT"
    await ws.close()


async def test_silent_client_is_closed_by_heartbeat(app_client, make_settings):
    """The server pings every ws_heartbeat seconds and closes a socket that never answers."""
    client = await app_client(make_settings(ws_heartbeat=0.3))
    from fullon_gateway.keys import AUTH

    await client.app[AUTH].create_user("hb@example.com", "pw-pw-pw-pw", "h")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "hb@example.com", "password": "pw-pw-pw-pw"})
    token = (await resp.json())["access_token"]
    ws = await client.ws_connect("/api/v1/cache/ws", params={"token": token}, autoping=False,
                                 autoclose=False)
    saw_ping = False
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        msg = await ws.receive(timeout=deadline - asyncio.get_running_loop().time())
        if msg.type == WSMsgType.PING:
            saw_ping = True
            continue
        break
    assert saw_ping
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)


async def test_conflation_keeps_the_queue_bounded(app_client, make_settings):
    """A client that never reads gets conflated market data: the queue (blanked slots
    included) never grows past twice ws_queue_limit, and the conflation counter grows."""
    limit = 20
    client = await app_client(make_settings(ws_queue_limit=limit))
    token = await login(client, "conflate@example.com")
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
