"""The demo tells one story: one set of markets, history that ends where live prices
start, live 1m bars that REST serves too, and a real 24-hour volume on the ticker."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from fullon_gateway.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo
from fullon_gateway.keys import DB, OHLCV_LOADER, REDIS
from fullon_gateway.ohlcv.seed import DEFAULT_SYMBOLS, seed_history
from fullon_gateway.simulator import EXCHANGES, MARKETS, MarketSimulator, market_state
from fullon_gateway.stream.publish import Publisher
from tests.modes import standalone_only
from tests.stream.support import connect, subscribe

pytestmark = standalone_only("the demo seeds the gateway's own tables, refuses a fullon database")


async def _login(client) -> dict[str, str]:
    resp = await client.post("/api/v1/auth/login",
                             json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def _simulator(client, settings, seeded, **kw) -> MarketSimulator:
    publisher = Publisher(client.app[REDIS], settings.redis_prefix, settings.history_len)
    return MarketSimulator(publisher, seeded, client.app[OHLCV_LOADER],
                           await market_state(client.app[DB]), seed=7, **kw)


async def _candles(client, headers, exchange, symbol, tf="1m", limit=1000) -> list[dict]:
    resp = await client.get(
        f"/api/v1/ohlcv/candles/{exchange}/{quote(symbol, safe='')}/{tf}?limit={limit}",
        headers=headers)
    assert resp.status == 200, (exchange, symbol, await resp.text())
    return list((await resp.json())["candles"])


def test_the_simulator_streams_exactly_the_seeded_markets():
    """The markets the simulator streams are the ones the history is seeded for."""
    assert set(MARKETS) == {(s.exchange, s.symbol) for s in DEFAULT_SYMBOLS}
    assert {(ex, sym) for ex, syms in EXCHANGES.items() for sym in syms} == set(MARKETS)


async def test_history_ends_where_the_live_price_starts(client, settings):
    """Seeded history ends at each market's start price (to the tick), and a simulator
    started afterwards continues from the last stored trade, not from a constant."""
    seeded = await seed_demo(client.app[DB])
    end = dt.datetime.now(dt.UTC)
    await seed_history(client.app[DB], days=0.05, end=end, trades_per_minute=1.0)
    prices, _ = await market_state(client.app[DB])
    for spec in DEFAULT_SYMBOLS:
        assert abs(prices[(spec.exchange, spec.symbol)] - spec.price) <= spec.tick, spec
    sim = await _simulator(client, settings, seeded, trade_chance=1.0, flush_every=1)
    for _ in range(3):
        await sim.step()
    moved, _ = await market_state(client.app[DB])
    assert moved != prices, "live trades were stored"
    again = await _simulator(client, settings, seeded)
    assert again.prices == moved, "a restarted simulator starts at the last stored trades"
    for key, price in moved.items():
        assert abs(price / MARKETS[key].price - 1) < 0.01, (key, price)  # no jump


async def test_live_bars_on_the_stream_are_the_bars_rest_serves(client, settings):
    """Every simulated market has REST candles, and the 1m bar a subscriber gets on the
    ohlcv stream equals the 1m candle REST serves for that minute."""
    seeded = await seed_demo(client.app[DB])
    headers = await _login(client)
    sim = await _simulator(client, settings, seeded, trade_chance=1.0, flush_every=2)
    for _ in range(4):
        await sim.step()
    for exchange, symbol in MARKETS:
        assert await _candles(client, headers, exchange, symbol), (exchange, symbol)
    ws = await connect(client, headers["Authorization"].split()[1])
    _ack, snap = await subscribe(ws, {"stream": "ohlcv", "exchange": "kraken",
                                      "symbol": "BTC/USD", "timeframe": "1m"})
    streamed = snap["result"]["bars"][-1]
    [rest] = [c for c in await _candles(client, headers, "kraken", "BTC/USD")
              if int(dt.datetime.fromisoformat(c["timestamp"]).timestamp() * 1000)
              == streamed["timestamp"]]
    for field in ("open", "high", "low", "close", "vol"):
        assert rest[field] == streamed[field], (field, rest, streamed)
    await ws.close()


async def test_ticker_volume_is_the_stored_24h_volume(client, settings):
    """A ticker's volume is the sum of the stored trades of the last 24 hours: the 1m
    candles' volumes (history and live), not a random number."""
    seeded = await seed_demo(client.app[DB])
    headers = await _login(client)
    await seed_history(client.app[DB], days=0.05, end=dt.datetime.now(dt.UTC),
                       trades_per_minute=1.0)
    sim = await _simulator(client, settings, seeded, trade_chance=1.0, flush_every=1)
    for _ in range(3):
        await sim.step()
    day = sum(c["vol"] for c in await _candles(client, headers, "kraken", "BTC/USD"))
    await sim.step()  # ticks first (with the volume stored so far), then stores its trades
    ws = await connect(client, headers["Authorization"].split()[1])
    _ack, snap = await subscribe(ws, {"stream": "tickers", "exchange": "kraken",
                                      "symbols": "BTC/USD"})
    [tick] = snap["result"]["tickers"]
    assert day > 0 and abs(tick["volume"] - day) < 1e-6, (tick, day)
    await ws.close()


async def test_closed_orders_keep_their_fields_and_bots_log_them(client, settings):
    """An order the simulator fills or cancels is published whole (side, price and
    volume kept, as fullon's update_order merges fields), and each order event is a
    line in its bot's log, served by /bots/{id}/last-log."""
    seeded = await seed_demo(client.app[DB])
    headers = await _login(client)
    sim = await _simulator(client, settings, seeded)
    for _ in range(48):  # orders change every 4th step
        await sim.step()
    ws = await connect(client, headers["Authorization"].split()[1])
    closed = []
    for ex_id in seeded["ex_ids"].values():
        _ack, snap = await subscribe(ws, {"stream": "orders", "ex_id": ex_id},
                                     request_id=f"o{ex_id}")
        result = snap["result"]
        orders = result.get("orders", result) if isinstance(result, dict) else result
        closed += [o for o in orders if o["status"] in ("filled", "canceled")]
    await ws.close()
    assert closed, "some orders were closed"
    for order in closed:
        assert {"side", "price", "volume", "symbol", "bot_id"} <= set(order), order
    lines = []
    for bot_id in seeded["bot_ids"]:
        resp = await client.get(f"/api/v1/orm/bots/{bot_id}/last-log", headers=headers)
        assert resp.status == 200, await resp.text()
        lines += [str(item) for item in (await resp.json())["items"]]
    assert any("placed" in line for line in lines), lines


async def test_history_load_logs_only_what_it_loaded(client, settings, caplog):
    """The demo's history load names what it loaded; a second start, with nothing to
    load, says the history is already there instead of listing "0 trades"."""
    import logging

    from fullon_gateway.demo import _seed_history

    seeded = await seed_demo(client.app[DB])
    sim = await _simulator(client, settings, seeded)
    end = dt.datetime.now(dt.UTC)
    with caplog.at_level(logging.INFO, logger="fullon_gateway.demo"):
        await _seed_history(client.app[DB], 0.02, end, sim)
        first = caplog.text
        caplog.clear()
        await _seed_history(client.app[DB], 0.02, end, sim)
        second = caplog.text
    assert "kraken:BTC/USD:" in first and "loaded 0.02 days" in first, first
    assert "already loaded" in second and "0 trades" not in second, second
