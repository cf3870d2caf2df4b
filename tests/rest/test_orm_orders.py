"""/api/v1/orm/orders and /trades: filters, status rules, trade stats and performance."""

from __future__ import annotations

from tests.rest.support import call, make_bot, make_exchange, make_order, seed_catalog


async def _setup(client, make_account):
    admin = await make_account("admin")
    user = await make_account()
    seed = await seed_catalog(client, admin)
    ex = await make_exchange(client, user, seed["kraken"]["cat_ex_id"])
    bot = await make_bot(client, user, ex_ids=[ex["ex_id"]])
    return admin, user, ex, bot


async def test_order_create_and_filters(client, make_account):
    """Orders are created New; lists are newest first and filter by bot, symbol, status,
    side and time; /orders/open lists only working orders."""
    _admin, user, ex, bot = await _setup(client, make_account)
    o1 = await make_order(client, user, ex["ex_id"], bot["bot_id"])
    o2 = await make_order(client, user, ex["ex_id"], None, symbol="ETH/USD", side="sell")
    o3 = await make_order(client, user, ex["ex_id"], bot["bot_id"], order_type="market", price=None)
    assert o1["status"] == "New" and o1["filled"] == 0 and o3["price"] is None
    ids = lambda body: [o["order_id"] for o in body["items"]]  # noqa: E731
    assert ids(await call(client, "GET", "/orders", user)) == [
        o3["order_id"],
        o2["order_id"],
        o1["order_id"],
    ]
    assert ids(await call(client, "GET", "/orders", user, params={"bot_id": bot["bot_id"]})) == [
        o3["order_id"],
        o1["order_id"],
    ]
    assert ids(await call(client, "GET", "/orders", user, params={"symbol": "ETH/USD"})) == [
        o2["order_id"]
    ]
    assert ids(await call(client, "GET", "/orders", user, params={"side": "sell"})) == [
        o2["order_id"]
    ]
    await call(client, "PATCH", f"/orders/{o1['order_id']}/status", user, json={"status": "Open"})
    await call(client, "PATCH", f"/orders/{o1['order_id']}/status", user, json={"status": "Filled"})
    assert ids(await call(client, "GET", "/orders", user, params={"status": "Filled"})) == [
        o1["order_id"]
    ]
    assert ids(await call(client, "GET", "/orders/open", user)) == [o3["order_id"], o2["order_id"]]
    future = "2999-01-01T00:00:00Z"
    assert ids(await call(client, "GET", "/orders", user, params={"since": future})) == []
    assert len(ids(await call(client, "GET", "/orders", user, params={"until": future}))) == 3
    err = await call(client, "GET", "/orders", user, 422, params={"since": "2024-01-01T00:00:00"})
    assert "since" in err["fields"]
    assert len(ids(await call(client, "GET", "/orders", user, params={"since": ""}))) == 3
    err = await call(client, "GET", "/orders", user, 422, params={"status": "Lost"})
    assert "status" in err["fields"]


async def test_order_validation(client, make_account):
    """Bad orders are 422: missing price on a limit order, non-positive volume, bad side,
    someone else's exchange account, a bot of another owner."""
    _admin, user, ex, _bot = await _setup(client, make_account)
    other = await make_account()
    other_bot = await make_bot(client, other, name="theirs")
    base = {"ex_id": ex["ex_id"], "symbol": "BTC/USD", "side": "buy", "volume": 1}
    err = await call(client, "POST", "/orders", user, 422, json={**base, "order_type": "limit"})
    assert "price" in err["fields"]
    err = await call(
        client,
        "POST",
        "/orders",
        user,
        422,
        json={**base, "volume": 0, "side": "hold", "order_type": "market"},
    )
    assert {"volume", "side"} <= set(err["fields"])
    err = await call(
        client,
        "POST",
        "/orders",
        user,
        422,
        json={**base, "order_type": "market", "volume": "1e400"},
    )
    assert "volume" in err["fields"]
    err = await call(client, "POST", "/orders", other, 422, json={**base, "order_type": "market"})
    assert "ex_id" in err["fields"]
    err = await call(
        client,
        "POST",
        "/orders",
        user,
        422,
        json={**base, "order_type": "market", "bot_id": other_bot["bot_id"]},
    )
    assert "bot_id" in err["fields"]


async def test_status_transitions(client, make_account):
    """Legal: New->Open->PartiallyFilled->Filled, New->Cancelled, New->Rejected,
    Open->Cancelled. Anything else (incl. leaving a final state) is 409 naming what is allowed."""
    _admin, user, ex, bot = await _setup(client, make_account)

    async def move(order, status, expect=200):
        return await call(
            client,
            "PATCH",
            f"/orders/{order['order_id']}/status",
            user,
            expect,
            json={"status": status},
        )

    o = await make_order(client, user, ex["ex_id"], bot["bot_id"])
    err = await move(o, "Filled", 409)
    assert err["code"] == "illegal_status_transition"
    assert "from New to Filled" in err["detail"] and "Open" in err["detail"]
    await move(o, "Open")
    part = await call(
        client,
        "PATCH",
        f"/orders/{o['order_id']}/status",
        user,
        json={"status": "PartiallyFilled", "filled": 0.4},
    )
    assert part["filled"] == 0.4
    err = await call(
        client, "PATCH", f"/orders/{o['order_id']}/status", user, 422,
        json={"status": "PartiallyFilled", "filled": 1.5},
    )
    assert "filled" in err["fields"]
    await move(o, "PartiallyFilled")
    done = await move(o, "Filled")
    assert done["status"] == "Filled" and done["filled"] == 1
    for target in ("Open", "Cancelled", "New", "Rejected"):
        err = await move(o, target, 409)
        assert "final" in err["detail"]
    c = await make_order(client, user, ex["ex_id"])
    await move(c, "Cancelled")
    r = await make_order(client, user, ex["ex_id"])
    rej = await call(
        client,
        "PATCH",
        f"/orders/{r['order_id']}/status",
        user,
        json={"status": "Rejected", "reason": "insufficient funds"},
    )
    assert rej["reason"] == "insufficient funds"
    oc = await make_order(client, user, ex["ex_id"])
    await move(oc, "Open")
    await move(oc, "New", 409)
    await move(oc, "Rejected", 409)
    await move(oc, "Cancelled")
    err = await call(
        client, "PATCH", f"/orders/{oc['order_id']}/status", user, 422, json={"status": "Gone"}
    )
    assert "status" in err["fields"]


async def test_concurrent_transitions_have_one_winner(client, make_account):
    """Two clients moving the same Open order to Filled and to Cancelled at once: exactly
    one succeeds and the other gets 409 (the check and the update are one statement)."""
    import asyncio

    _admin, user, ex, _bot = await _setup(client, make_account)
    for _ in range(5):
        o = await make_order(client, user, ex["ex_id"])
        await call(
            client, "PATCH", f"/orders/{o['order_id']}/status", user, json={"status": "Open"}
        )
        path = f"/api/v1/orm/orders/{o['order_id']}/status"
        r1, r2 = await asyncio.gather(
            client.patch(path, json={"status": "Filled"}, headers=user.headers),
            client.patch(path, json={"status": "Cancelled"}, headers=user.headers),
        )
        assert sorted([r1.status, r2.status]) == [200, 409]


async def test_trades_filters_stats_performance(client, make_account):
    """Trades record cost = price*volume; filter by bot/symbol/time; stats and daily
    performance (with running PnL) are computed in SQL."""
    _admin, user, ex, bot = await _setup(client, make_account)
    order = await make_order(client, user, ex["ex_id"], bot["bot_id"])
    rows = [
        {
            "symbol": "BTC/USD",
            "side": "buy",
            "volume": 2,
            "price": 100,
            "fee": 1,
            "ts": "2025-01-01T10:00:00Z",
            "order_id": order["order_id"],
            "bot_id": bot["bot_id"],
        },
        {
            "symbol": "BTC/USD",
            "side": "sell",
            "volume": 2,
            "price": 110,
            "fee": 1,
            "roi": 20,
            "ts": "2025-01-01T12:00:00Z",
            "bot_id": bot["bot_id"],
        },
        {
            "symbol": "ETH/USD",
            "side": "sell",
            "volume": 1,
            "price": 50,
            "fee": 0.5,
            "roi": -5,
            "ts": "2025-01-02T09:00:00Z",
            "dry_run": True,
        },
    ]
    made = [
        await call(client, "POST", "/trades", user, 201, json={"ex_id": ex["ex_id"], **r})
        for r in rows
    ]
    assert made[0]["cost"] == 200 and made[0]["order_id"] == order["order_id"]
    assert made[0]["ts"] == "2025-01-01T10:00:00Z"
    listed = await call(client, "GET", "/trades", user)
    assert [t["trade_id"] for t in listed["items"]] == [t["trade_id"] for t in reversed(made)]
    assert (
        len((await call(client, "GET", "/trades", user, params={"bot_id": bot["bot_id"]}))["items"])
        == 2
    )
    assert (
        len((await call(client, "GET", "/trades", user, params={"dry_run": "true"}))["items"]) == 1
    )
    assert (
        len(
            (await call(client, "GET", "/trades", user, params={"since": "2025-01-02T00:00:00Z"}))[
                "items"
            ]
        )
        == 1
    )
    assert (
        len(
            (await call(client, "GET", "/trades", user, params={"order_id": order["order_id"]}))[
                "items"
            ]
        )
        == 1
    )
    stats = await call(client, "GET", "/trades/stats", user)
    assert stats["trades"] == 3 and stats["wins"] == 1 and stats["losses"] == 1
    assert stats["win_rate"] == 0.5 and stats["pnl"] == 15 and stats["fees"] == 2.5
    assert stats["volume"] == 470 and stats["best_trade"] == 20 and stats["worst_trade"] == -5
    btc = await call(client, "GET", "/trades/stats", user, params={"symbol": "BTC/USD"})
    assert btc["trades"] == 2 and btc["pnl"] == 20 and btc["win_rate"] == 1.0
    perf = await call(client, "GET", "/trades/performance", user)
    assert perf["bucket"] == "day"
    assert [(p["period"], p["trades"], p["pnl"], p["cumulative_pnl"]) for p in perf["points"]] == [
        ("2025-01-01T00:00:00Z", 2, 20, 20),
        ("2025-01-02T00:00:00Z", 1, -5, 15),
    ]
    hourly = await call(client, "GET", "/trades/performance", user, params={"bucket": "hour"})
    assert len(hourly["points"]) == 3
    await call(client, "GET", "/trades/performance", user, 422, params={"bucket": "decade"})
    empty = await call(client, "GET", "/trades/stats", user, params={"symbol": "NONE"})
    assert empty["trades"] == 0 and empty["win_rate"] is None and empty["pnl"] == 0


async def test_trade_validation_and_isolation(client, make_account):
    """A trade needs positive price/volume and the owner's order; other users get 404."""
    _admin, user, ex, _bot = await _setup(client, make_account)
    other = await make_account()
    base = {"ex_id": ex["ex_id"], "symbol": "BTC/USD", "side": "buy", "volume": 1, "price": 10}
    err = await call(
        client,
        "POST",
        "/trades",
        user,
        422,
        json={**base, "price": -1, "fee": -1, "ts": "yesterday"},
    )
    assert {"price", "fee", "ts"} <= set(err["fields"])
    err = await call(client, "POST", "/trades", user, 422, json={**base, "order_id": 123456})
    assert "order_id" in err["fields"]
    trade = await call(client, "POST", "/trades", user, 201, json=base)
    await call(client, "GET", f"/trades/{trade['trade_id']}", other, 404)
    assert (await call(client, "GET", "/trades", other))["items"] == []
    assert (await call(client, "GET", "/trades/stats", other))["trades"] == 0
    order = await make_order(client, user, ex["ex_id"])
    await call(client, "GET", f"/orders/{order['order_id']}", other, 404)
    await call(
        client, "PATCH", f"/orders/{order['order_id']}/status", other, 404, json={"status": "Open"}
    )
    assert (await call(client, "GET", "/orders/open", other))["items"] == []
