"""Resume with ``since``: a replay that fits is replayed, one larger than the socket's
queue gets a fresh snapshot instead, and a full history resumes at default settings."""

from __future__ import annotations

from fullon_gateway.keys import AUTH
from tests.stream.support import (
    connect,
    login,
    make_exchange,
    publisher,
    recv,
    subscribe,
)


async def test_resume_larger_than_the_queue_gets_a_fresh_snapshot(app_client, make_settings):
    """A resume whose replay would not fit in the socket's queue is answered with a fresh
    snapshot (recovered: false) instead of a 1013 close; live updates then continue."""
    client = await app_client(make_settings(ws_queue_limit=20, history_len=50))
    token = await login(client, "resume@example.com")
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
    token = await login(client, "resume2@example.com")
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
