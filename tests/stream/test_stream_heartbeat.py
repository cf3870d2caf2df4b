"""The heartbeat contract: a client that answers pings stays, a silent one is pinged and
closed 1001 heartbeat timeout after twice the heartbeat, even one that never reads."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType

from fullon_gateway.keys import SOCKETS
from tests.stream.support import closed, login, request
from tests.support import eventually


async def test_client_answering_pings_stays_open(app_client, make_settings):
    """A client that answers the server's pings (and sends nothing else) stays open well
    past three heartbeat periods."""
    hb = 0.3
    client = await app_client(make_settings(ws_heartbeat=hb))
    token = await login(client, "hb-ok@example.com")
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
    token = await login(client, "hb-silent@example.com")
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
    token = await login(client, "hb-dead@example.com")
    ws = await client.ws_connect("/api/v1/cache/ws", params={"token": token}, autoping=False,
                                 autoclose=False)
    (conn,) = await eventually(lambda: list(client.app[SOCKETS]), what="the socket registered")
    await eventually(lambda: conn.closing, what="the heartbeat closing the socket")
    assert conn.close_code == 1001
    assert await closed(ws) == (1001, "heartbeat timeout")
