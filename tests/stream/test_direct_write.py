"""The direct write (connection.py, ADR-007): frames written to the transport at once
when a socket is idle, the queue and writer task otherwise, with the same order."""

from __future__ import annotations

from fullon_gateway.keys import AUTH, REDIS, SOCKETS
from tests.stream.support import (
    connect,
    login,
    make_exchange,
    publisher,
    recv,
    request,
    subscribe,
)
from tests.support import eventually

BIG = "x" * 40_000  # large frames fill the socket buffers quickly


async def test_an_idle_socket_gets_frames_written_at_once_with_every_length_form(
        client, make_account):
    """A client that keeps up gets its frames through the direct write, and frames of
    each RFC 6455 length form (7-bit, 16-bit, 64-bit) arrive intact and in order."""
    acct = await make_account()
    ws = await connect(client, acct.token)
    assert (await request(ws, "ping", {}, request_id="p"))["result"] == "pong"  # < 126 bytes
    (conn,) = list(client.app[SOCKETS])  # registered once authenticated
    assert conn.direct
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken", "symbols": ["BTC/USD"]})
    pub = publisher(client)
    sizes = [10, 1_000, 70_000, 65_400, 5]  # around the 16-bit / 64-bit boundary too
    for i, size in enumerate(sizes):
        await pub.ticker("kraken", "BTC/USD", {"price": i, "pad": "y" * size})
        frame = await recv(ws)  # read each before the next: nothing is conflated
        assert frame["result"]["price"] == i and len(frame["result"]["pad"]) == size
    assert conn.direct_writes >= len(sizes) + 3  # + the ping reply, the ack, the snapshot
    await ws.close()


async def test_a_full_transport_falls_back_to_the_queue_in_order(app_client, make_settings):
    """A client that stops reading its orders fills the kernel's buffers; later frames
    take the queue (the fallback is observed: frames were queued after direct writes),
    and once the client reads again it gets every change, in publish order, no gap."""
    client = await app_client(make_settings(ws_queue_limit=5_000))
    email, password = "direct-full@example.com", "pw-pw-pw-pw"
    user = await client.app[AUTH].create_user(email, password, "d")
    resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    token = (await resp.json())["access_token"]
    ex_id = await make_exchange(client, user["user_id"])
    ws = await connect(client, token)
    await subscribe(ws, {"stream": "orders", "ex_id": ex_id})
    (conn,) = list(client.app[SOCKETS])
    direct_before = conn.direct_writes
    pub = publisher(client)
    published = 0
    most_queued = 0
    while most_queued == 0 or published < most_queued + 20:  # the client reads nothing
        await pub.order(ex_id, {"order_id": "o", "n": published, "pad": BIG})
        published += 1
        most_queued = max(most_queued, conn.queued)
        assert published < 3_000, "the transport never filled"
    assert conn.direct_writes > direct_before, "no frame took the direct write first"
    assert not conn.closing
    ns, seqs = [], []
    while len(ns) < published:
        frame = await recv(ws, wait=20)
        ns.append(frame["result"]["n"])
        seqs.append(frame["seq"])
    assert ns == list(range(published))
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    await eventually(lambda: conn.queued == 0, what="the queue drained")
    # Idle again: the next change is written at once.
    direct_before = conn.direct_writes
    await pub.order(ex_id, {"order_id": "o", "n": published, "pad": ""})
    assert (await recv(ws))["result"]["n"] == published
    assert conn.direct_writes == direct_before + 1
    await ws.close()


async def test_compression_negotiated_uses_the_writer_in_order(app_client, make_settings):
    """With permessage-deflate negotiated no frame is written directly (aiohttp compresses
    large frames in an executor, which a direct write could overtake); small and large
    frames alike arrive decompressed and in publish order."""
    client = await app_client(make_settings(ws_compress=True))
    token = await login(client, "direct-deflate@example.com")
    ws = await client.ws_connect("/api/v1/cache/ws", params={"token": token}, compress=15,
                                 autoclose=False)
    assert ws.compress == 15  # negotiated
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    (conn,) = list(client.app[SOCKETS])
    assert not conn.direct
    pub = publisher(client)
    total = 30
    for i in range(total):  # alternate sizes: large ones compress off the event loop
        pad = "z" * (20_000 if i % 2 else 10)
        await pub.ticker("kraken", f"S{i}/USD", {"price": i, "pad": pad})
    prices = [(await recv(ws))["result"]["price"] for _ in range(total)]
    assert prices == list(range(total))
    assert conn.direct_writes == 0
    await ws.close()


async def test_batch_sockets_keep_the_writer(client, make_account):
    """A ?batch=1 socket never takes the direct write: what queues together still leaves
    as one array frame (the ack and its snapshot)."""
    acct = await make_account()
    ws = await connect(client, acct.token, batch="1")
    await ws.send_json({"action": "subscribe", "request_id": "b",
                        "params": {"stream": "tickers", "exchange": "kraken"}})
    frame = await recv(ws)
    assert isinstance(frame, list) and frame[1]["snapshot"] is True
    (conn,) = list(client.app[SOCKETS])
    assert not conn.direct
    assert conn.direct_writes == 0
    await ws.close()


async def test_changes_that_reach_the_hub_in_one_read_take_one_send(client, make_account):
    """Five tickers published in one Redis pipeline reach the hub in one read (Redis
    writes a subscriber's pending messages with one write); the idle socket gets the
    first at once and the other four held and joined into one transport write
    (burst.py): two sends, not five, in publish order, none conflated."""
    acct = await make_account()
    ws = await connect(client, acct.token)
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken", "symbols": ["BTC/USD"]})
    (conn,) = list(client.app[SOCKETS])
    writes, sends = conn.direct_writes, conn.direct_sends
    pub = publisher(client)
    async with client.app[REDIS].pipeline(transaction=False) as pipe:
        for i in range(5):
            await pub.ticker("kraken", "BTC/USD", {"price": i}, pipeline=pipe)
        await pipe.execute()
    prices = [(await recv(ws))["result"]["price"] for _ in range(5)]
    assert prices == [0, 1, 2, 3, 4]
    assert conn.direct_writes == writes + 5
    assert conn.direct_sends == sends + 2, "the last four frames were not sent together"
    await ws.close()
