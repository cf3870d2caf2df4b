"""Trades ingested over HTTP reach live ohlcv subscribers as 1m bars."""

from urllib.parse import quote

from tests.stream.support import connect, recv, subscribe


async def test_ingested_trades_publish_live_1m_bars(client, make_account):
    """An ohlcv 1m subscriber gets the bar built from trades posted to the ingest endpoint,
    with open/high/low/close/vol computed from those trades."""
    admin = await make_account(role="admin")
    ws = await connect(client, admin.token)
    await subscribe(ws, {"stream": "ohlcv", "exchange": "livex", "symbol": "BTC/USD",
                         "timeframe": "1m"})
    trades = [
        {"trade_id": "1", "timestamp": "2026-01-01T00:00:05Z", "price": 100, "volume": 1,
         "side": "buy"},
        {"trade_id": "2", "timestamp": "2026-01-01T00:00:30Z", "price": 105, "volume": 2,
         "side": "sell"},
        {"trade_id": "3", "timestamp": "2026-01-01T00:00:50Z", "price": 99, "volume": 1,
         "side": "buy"},
    ]
    resp = await client.post(f"/api/v1/ohlcv/trades/livex/{quote('BTC/USD', safe='')}",
                             json={"trades": trades}, headers=admin.headers)
    assert resp.status == 200, await resp.text()
    frame = await recv(ws)
    while frame.get("snapshot"):
        frame = await recv(ws)
    assert frame["action"] == "ohlcv_update"
    bar = frame["result"]
    assert bar["timestamp"] == 1767225600000
    assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["vol"]) == (100, 105, 99, 99, 4)
    await ws.close()


async def test_a_backfill_publishes_only_its_newest_bars(client, make_account):
    """A load touching more minutes than LIVE_BARS_PER_LOAD puts only the newest ones on
    the live stream: a subscriber's snapshot afterwards holds exactly those bars."""
    from fullon_gateway.stream.live_bars import LIVE_BARS_PER_LOAD

    admin = await make_account(role="admin")
    minutes = LIVE_BARS_PER_LOAD + 40
    trades = [{"trade_id": str(i), "timestamp": 1767225600000 + i * 60_000 + 1_000,
               "price": 100 + i, "volume": 1, "side": "buy"} for i in range(minutes)]
    resp = await client.post(f"/api/v1/ohlcv/trades/backx/{quote('ETH/USD', safe='')}",
                             json={"trades": trades}, headers=admin.headers)
    assert resp.status == 200, await resp.text()
    ws = await connect(client, admin.token)
    _ack, snap = await subscribe(ws, {"stream": "ohlcv", "exchange": "backx",
                                      "symbol": "ETH/USD", "timeframe": "1m"})
    stamps = [bar["timestamp"] for bar in snap["result"]["bars"]]
    assert len(stamps) == LIVE_BARS_PER_LOAD
    assert stamps[-1] == 1767225600000 + (minutes - 1) * 60_000
    await ws.close()
