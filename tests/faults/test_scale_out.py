"""Two gateway processes on one Postgres and one Redis (issue 11: scale-out)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import redis.asyncio as aioredis

from fullon_gateway.stream.publish import Publisher
from tests.faults.conftest import EMAIL, PASSWORD

pytestmark = pytest.mark.e2e

LOGIN = "/api/v1/auth/login"
WS = "/api/v1/cache/ws"


async def _login(session, url, password=PASSWORD):
    async with session.post(url + LOGIN, json={"email": EMAIL, "password": password}) as resp:
        return resp.status, await resp.json()


async def _next_json(ws, timeout=10):
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def test_publish_logout_and_throttling_span_both_processes(two_gateways):
    """A publish reaches subscribers on both processes; a logout on A closes the
    session's sockets on A and on B (1008 session revoked); failed logins on A and on
    B count in one throttle."""
    a, b = two_gateways
    async with aiohttp.ClientSession() as session:
        status, pair = await _login(session, a.url)
        assert status == 200
        token = pair["access_token"]
        sockets = []
        for srv in (a, b):
            ws = await session.ws_connect(srv.url + WS, params={"token": token})
            await ws.send_json({"action": "subscribe", "request_id": 1,
                                "params": {"stream": "tickers", "exchange": "kraken",
                                           "symbol": "BTC/USD"}})
            assert (await _next_json(ws))["success"] is True
            assert (await _next_json(ws))["snapshot"] is True
            sockets.append(ws)

        client = aioredis.Redis.from_url(a.env["FULLON_REDIS_URL"])
        try:
            pub = Publisher(client, a.env["FULLON_REDIS_PREFIX"])
            seq = await pub.ticker("kraken", "BTC/USD", {"price": 42})
        finally:
            await client.aclose()
        for ws in sockets:
            frame = await _next_json(ws)
            assert frame["result"]["price"] == 42 and frame["seq"] == seq

        async with session.post(a.url + "/api/v1/auth/logout",
                                headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200
        for ws in sockets:
            msg = await ws.receive(timeout=10)
            while msg.type == aiohttp.WSMsgType.TEXT:  # frames queued before the close
                msg = await ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.CLOSE, msg
            assert (msg.data, msg.extra) == (1008, "session revoked")

        # gateway.test.yaml: 3 failures for one account from one address.
        for srv in (a, b, a):
            assert (await _login(session, srv.url, "wrong"))[0] == 401
        status, body = await _login(session, b.url, PASSWORD)
        assert status == 429 and body["code"] == "login_throttled"
        await asyncio.gather(*(ws.close() for ws in sockets))
