"""Every stream end to end: publisher -> Redis -> hub -> socket, snapshot then live."""

from __future__ import annotations

from stream_support import connect, make_bot, make_exchange, publisher, recv, request, subscribe


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
