"""A publisher sending malformed data (issue 11: fault tests)."""

from __future__ import annotations

from fullon_gateway.keys import REDIS, SETTINGS
from fullon_gateway.stream import names
from tests.stream.support import connect, publisher, recv, subscribe

GARBAGE = [b"not json", b"{", b'{"seq": "x"}', b"\xff\xfe", b"[]", b'{"seq": 1}',
           b'{"a": 1}' * 10_000, b"null"]


async def test_malformed_messages_are_dropped_and_the_stream_goes_on(client, make_account):
    """Garbage on a stream's channel and on fullon_cache's ticker channel (bad JSON,
    wrong shapes, invalid UTF-8, 80 KB) reaches no client and crashes nothing: the next
    well-formed change is delivered, and the process still answers."""
    account = await make_account()
    ws = await connect(client, account.token)
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken", "symbol": "BTC/USD"})
    redis, prefix = client.app[REDIS], client.app[SETTINGS].redis_prefix
    for raw in GARBAGE:
        await redis.publish(prefix + names.unit_channel(names.tickers_unit("kraken")), raw)
        if not raw.startswith(b"{"):  # there any JSON object is a fullon Tick
            await redis.publish(prefix + "ticker_updates:kraken:BTC/USD", raw)
    seq = await publisher(client).ticker("kraken", "BTC/USD", {"price": 7})
    frame = await recv(ws)
    assert frame["action"] == "tickers_update" and frame["seq"] == seq
    assert frame["result"]["price"] == 7
    assert (await client.get("/health/live")).status == 200
    await ws.close()
