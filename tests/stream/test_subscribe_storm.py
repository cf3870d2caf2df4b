"""A subscribe storm on a healthy Redis: every subscribe succeeds (issue 11, item 3)."""

from __future__ import annotations

import asyncio

import aiohttp

from fullon_gateway.keys import STREAMS
from tests.stream.support import WS, publisher, recv

STORM = 400  # CI size; the benchmark (scripts/bench/broadcast.py, its connect phase) runs 10,000
SYMBOLS = 500  # a large snapshot (~30 KB), so reads hold their connection a while


async def test_a_subscribe_storm_all_succeeds(app_client, make_settings, make_account):
    """400 sockets subscribe to a 500-symbol ticker snapshot at once through a Redis
    pool shrunk to 2 connections with a 0.5 s wait: every subscribe gets its ack and
    snapshot (one read each used to hold a pooled connection, and past the wait the
    rest failed with "live data store unavailable"), and the reads went out batched."""
    client = await app_client(make_settings(redis_pool_size=2, dependency_timeout=0.5))
    account = await make_account()
    pub = publisher(client)
    for i in range(SYMBOLS):
        await pub.ticker("kraken", f"S{i}/USD", {"price": i, "pad": "x" * 40})
    # Its own session: the test client's pool stops at 100 open connections.
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    url = client.make_url(WS)
    sockets = await asyncio.gather(*(
        session.ws_connect(url, params={"token": account.token}, autoclose=False)
        for _ in range(STORM)))
    for n, ws in enumerate(sockets):
        await ws.send_json({"action": "subscribe", "request_id": n,
                            "params": {"stream": "tickers", "exchange": "kraken"}})

    async def outcome(ws):
        ack = await recv(ws, wait=60)
        if not ack.get("success"):
            return ack.get("error_code")
        snap = await recv(ws, wait=60)
        assert snap["snapshot"] is True and len(snap["result"]["tickers"]) == SYMBOLS
        return "ok"

    results = await asyncio.gather(*(outcome(ws) for ws in sockets))
    failed = [r for r in results if r != "ok"]
    assert not failed, f"{len(failed)} of {STORM} subscribes failed: {set(failed)}"
    batches = client.app[STREAMS].snapshots.batches
    assert batches < STORM / 4, f"{batches} MULTIs for {STORM} snapshot reads"
    await asyncio.gather(*(ws.close() for ws in sockets))
    await session.close()
