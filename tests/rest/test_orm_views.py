"""Dashboard views against a seeded dataset whose answers are worked out by hand."""

from __future__ import annotations

import pytest

from tests.rest.support import call, make_bot, make_exchange, make_order, seed_catalog


async def _trade(client, who, ex_id, bot_id, symbol, side, volume, price, fee, roi=None):
    return await call(
        client,
        "POST",
        "/trades",
        who,
        201,
        json={
            "ex_id": ex_id,
            "bot_id": bot_id,
            "symbol": symbol,
            "side": side,
            "volume": volume,
            "price": price,
            "fee": fee,
            "roi": roi,
            "ts": "2025-03-01T12:00:00Z",
        },
    )


async def _status(client, who, order, *steps):
    for status in steps:
        await call(
            client, "PATCH", f"/orders/{order['order_id']}/status", who, json={"status": status}
        )


@pytest.fixture
async def dataset(client, make_account):
    """User A: one account, bots A1 (active) and A2; B: one bot with a big win."""
    admin = await make_account("admin")
    a, b = await make_account(), await make_account()
    seed = await seed_catalog(client, admin)
    ex_a = await make_exchange(client, a, seed["kraken"]["cat_ex_id"], "a-main")
    ex_b = await make_exchange(client, b, seed["bitmex"]["cat_ex_id"], "b-main")
    a1 = await make_bot(client, a, "A1", [ex_a["ex_id"]])
    a2 = await make_bot(client, a, "A2", [ex_a["ex_id"]])
    b1 = await make_bot(client, b, "B1", [ex_b["ex_id"]])
    await call(client, "PATCH", f"/bots/{a1['bot_id']}", a, json={"active": True})
    await make_order(client, a, ex_a["ex_id"], a1["bot_id"])  # New
    await _status(client, a, await make_order(client, a, ex_a["ex_id"], a1["bot_id"]), "Open")
    await _status(
        client, a, await make_order(client, a, ex_a["ex_id"], a1["bot_id"]), "Open", "Filled"
    )
    await _status(client, a, await make_order(client, a, ex_a["ex_id"], a2["bot_id"]), "Cancelled")
    await _trade(client, a, ex_a["ex_id"], a1["bot_id"], "BTC/USD", "buy", 1, 100, 1)
    await _trade(client, a, ex_a["ex_id"], a1["bot_id"], "BTC/USD", "sell", 1, 120, 1, 18)
    await _trade(client, a, ex_a["ex_id"], a1["bot_id"], "BTC/USD", "sell", 1, 90, 1, -12)
    await _trade(client, a, ex_a["ex_id"], a2["bot_id"], "ETH/USD", "buy", 2, 50, 0.5, 10)
    await _trade(client, b, ex_b["ex_id"], b1["bot_id"], "BTC/USD", "sell", 1, 1000, 2, 500)
    return {"admin": admin, "a": a, "b": b, "ex_a": ex_a, "a1": a1, "a2": a2, "b1": b1}


async def test_bot_dashboard(client, dataset):
    """Per bot: orders, open orders, trades, wins, losses, win rate, PnL, fees, volume."""
    d = dataset
    body = await call(client, "GET", "/views/bot-dashboard", d["a"])
    rows = {r["name"]: r for r in body["items"]}
    assert set(rows) == {"A1", "A2"}
    a1, a2 = rows["A1"], rows["A2"]
    assert (a1["orders"], a1["open_orders"], a1["trades"], a1["wins"], a1["losses"]) == (
        3,
        2,
        3,
        1,
        1,
    )
    assert (a1["win_rate"], a1["pnl"], a1["fees"], a1["volume"]) == (0.5, 6, 3, 310)
    assert a1["active"] is True and a1["last_trade_at"] == "2025-03-01T12:00:00Z"
    assert (a2["orders"], a2["open_orders"], a2["trades"], a2["wins"], a2["losses"]) == (
        1,
        0,
        1,
        1,
        0,
    )
    assert (a2["win_rate"], a2["pnl"], a2["fees"], a2["volume"]) == (1.0, 10, 0.5, 100)
    stats = await call(client, "GET", f"/bots/{d['a1']['bot_id']}/stats", d["a"])
    assert stats == a1
    everyone = await call(client, "GET", "/views/bot-dashboard", d["admin"])
    assert {r["name"] for r in everyone["items"]} == {"A1", "A2", "B1"}
    only_b = await call(
        client, "GET", "/views/bot-dashboard", d["admin"], params={"user_id": d["b"].user_id}
    )
    assert [(r["name"], r["pnl"]) for r in only_b["items"]] == [("B1", 500)]


async def test_portfolio_stats(client, dataset):
    """Totals for the caller's accounts, bots, open orders and trades, per account too."""
    d = dataset
    p = await call(client, "GET", "/views/portfolio-stats", d["a"])
    assert (p["exchanges"], p["bots"], p["active_bots"], p["open_orders"]) == (1, 2, 1, 2)
    assert (p["trades"], p["wins"], p["losses"]) == (4, 2, 1)
    assert p["win_rate"] == pytest.approx(2 / 3)
    assert (p["pnl"], p["fees"], p["volume"], p["best_trade"], p["worst_trade"]) == (
        16,
        3.5,
        410,
        18,
        -12,
    )
    assert p["by_exchange"] == [
        {
            "ex_id": d["ex_a"]["ex_id"],
            "name": "a-main",
            "exchange": "kraken",
            "trades": 4,
            "pnl": 16,
            "fees": 3.5,
            "volume": 410,
        }
    ]
    # A user cannot widen the view with user_id; an admin can narrow theirs with it.
    same = await call(
        client, "GET", "/views/portfolio-stats", d["a"], params={"user_id": d["b"].user_id}
    )
    assert same == p
    everyone = await call(client, "GET", "/views/portfolio-stats", d["admin"])
    assert (everyone["trades"], everyone["pnl"], everyone["exchanges"], everyone["bots"]) == (
        5,
        516,
        2,
        3,
    )
    as_a = await call(
        client, "GET", "/views/portfolio-stats", d["admin"], params={"user_id": d["a"].user_id}
    )
    assert as_a == p


async def test_trading_overview(client, dataset):
    """Volume and PnL per symbol, totals, and orders per status; time range filters."""
    d = dataset
    o = await call(client, "GET", "/views/trading-overview", d["a"])
    assert o["by_symbol"] == [
        {
            "symbol": "BTC/USD",
            "trades": 3,
            "buys": 1,
            "sells": 2,
            "base_volume": 3,
            "volume": 310,
            "pnl": 6,
            "fees": 3,
        },
        {
            "symbol": "ETH/USD",
            "trades": 1,
            "buys": 1,
            "sells": 0,
            "base_volume": 2,
            "volume": 100,
            "pnl": 10,
            "fees": 0.5,
        },
    ]
    assert o["totals"]["trades"] == 4 and o["totals"]["pnl"] == 16
    assert o["orders_by_status"] == {"New": 1, "Open": 1, "Filled": 1, "Cancelled": 1}
    later = await call(
        client,
        "GET",
        "/views/trading-overview",
        d["a"],
        params={"since": "2025-03-02T00:00:00Z", "until": "2999-01-01T00:00:00Z"},
    )
    assert later["by_symbol"] == [] and later["totals"]["trades"] == 0
    await call(
        client, "GET", "/views/trading-overview", d["a"], 422, params={"since": "2025-03-02"}
    )
