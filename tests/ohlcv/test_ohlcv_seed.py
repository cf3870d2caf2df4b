"""The demo seed: a plausible random-walk history, loaded once."""

from __future__ import annotations

import datetime as dt

from fullon_gateway.keys import DB
from fullon_gateway.ohlcv.seed import DEFAULT_SYMBOLS, seed_history


async def test_seed_history_fills_every_symbol_once(client, make_account):
    """seed_history loads trades for every default symbol up to `end`; the candles are
    served (1d over the seeded days, prices near the start price) and seeding again
    adds nothing."""
    user = await make_account()
    end = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    loaded = await seed_history(client.app[DB], days=3, trades_per_minute=0.5, end=end)
    assert set(loaded) == {f"{s.exchange}:{s.symbol}" for s in DEFAULT_SYMBOLS}
    assert all(n > 1000 for n in loaded.values()), loaded
    resp = await client.get("/api/v1/ohlcv/candles/kraken/BTC/USD/1d", headers=user.headers)
    body = await resp.json()
    assert resp.status == 200 and body["count"] in (3, 4)
    assert body["candles"][-1]["timestamp"] < "2024-06-01"
    assert all(30_000 < c["low"] <= c["high"] < 130_000 for c in body["candles"])
    again = await seed_history(client.app[DB], days=3, trades_per_minute=0.5, end=end)
    assert set(again.values()) == {0}
