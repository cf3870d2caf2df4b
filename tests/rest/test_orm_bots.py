"""/api/v1/orm/bots and /strategies: bots with accounts, feeds, strategies, stats, logs."""

from __future__ import annotations

from fullon_gateway.keys import AUTH
from tests.rest.support import call, make_bot, make_exchange, make_order, seed_catalog


async def _setup(client, make_account):
    admin = await make_account("admin")
    user = await make_account()
    seed = await seed_catalog(client, admin)
    ex = await make_exchange(client, user, seed["kraken"]["cat_ex_id"])
    return admin, user, seed, ex


async def test_bot_crud(client, make_account):
    """Create, read, list, update and delete a bot; create/delete announce ownership."""
    _admin, user, _seed, ex = await _setup(client, make_account)
    announced = []
    client.app[AUTH].add_revocation_listener(lambda kind, ident: announced.append((kind, ident)))
    bot = await call(
        client, "POST", "/bots", user, 201, json={"name": "alpha", "ex_ids": [ex["ex_id"]]}
    )
    assert bot["user_id"] == user.user_id and bot["dry_run"] is True and bot["active"] is False
    assert bot["ex_ids"] == [ex["ex_id"]]
    assert ("ownership", user.user_id) in announced
    assert await call(client, "GET", f"/bots/{bot['bot_id']}", user) == bot
    upd = await call(
        client,
        "PATCH",
        f"/bots/{bot['bot_id']}",
        user,
        json={"active": True, "dry_run": False, "ex_ids": [], "description": "d"},
    )
    assert upd["active"] is True and upd["dry_run"] is False and upd["ex_ids"] == []
    await call(client, "POST", "/bots", user, 409, json={"name": "ALPHA"})
    listed = await call(client, "GET", "/bots", user, params={"active": "true"})
    assert [b["bot_id"] for b in listed["items"]] == [bot["bot_id"]]
    assert (await call(client, "GET", "/bots", user, params={"active": "false"}))["items"] == []
    announced.clear()
    await call(client, "DELETE", f"/bots/{bot['bot_id']}", user, 204)
    assert ("ownership", user.user_id) in announced
    await call(client, "GET", f"/bots/{bot['bot_id']}", user, 404)


async def test_bot_validation(client, make_account):
    """Invalid bodies are 422 with fields; another user's exchange account in ex_ids is 422."""
    _admin, user, seed, _ex = await _setup(client, make_account)
    other = await make_account()
    other_ex = await make_exchange(client, other, seed["kraken"]["cat_ex_id"])
    err = await call(
        client, "POST", "/bots", user, 422, json={"name": "", "dry_run": "perhaps", "ex_ids": ["x"]}
    )
    assert {"name", "dry_run", "ex_ids.0"} <= set(err["fields"])
    err = await call(
        client, "POST", "/bots", user, 422, json={"name": "b", "ex_ids": [other_ex["ex_id"]]}
    )
    assert "ex_ids" in err["fields"]
    await call(client, "POST", "/bots", user, 422, json={"name": "b", "ex_ids": [2**31]})


async def test_delete_bot_with_open_orders_is_409(client, make_account):
    """A bot with open orders cannot be deleted (409 with a clear message); once they are
    done it can, and its orders stay in the owner's history without the bot."""
    _admin, user, _seed, ex = await _setup(client, make_account)
    bot = await make_bot(client, user, ex_ids=[ex["ex_id"]])
    order = await make_order(client, user, ex["ex_id"], bot["bot_id"])
    err = await call(client, "DELETE", f"/bots/{bot['bot_id']}", user, 409)
    assert err["code"] == "bot_has_open_orders"
    assert "1 open order" in err["detail"] and "cancel" in err["detail"]
    await call(
        client, "PATCH", f"/orders/{order['order_id']}/status", user, json={"status": "Cancelled"}
    )
    await call(client, "DELETE", f"/bots/{bot['bot_id']}", user, 204)
    kept = await call(client, "GET", f"/orders/{order['order_id']}", user)
    assert kept["bot_id"] is None and kept["status"] == "Cancelled"


async def test_feeds_strategies_details_logs(client, make_account):
    """Feeds and strategies attach to a bot; details shows all; logs come back newest first."""
    _admin, user, seed, ex = await _setup(client, make_account)
    bot = await make_bot(client, user, ex_ids=[ex["ex_id"]])
    b = f"/bots/{bot['bot_id']}"
    # The strategy first: in fullon (attach mode) a feed belongs to a strategy.
    strat = await call(
        client,
        "POST",
        "/strategies/bot-strategies",
        user,
        201,
        json={
            "bot_id": bot["bot_id"],
            "cat_str_id": seed["strategy"]["cat_str_id"],
            "size": 0.5,
            "leverage": 2,
            "params": {"fast": 5, "stop": 0.01},
        },
    )
    assert strat["strategy"] == "trend" and strat["params"] == {"fast": 5, "stop": 0.01}
    feed = await call(
        client,
        "POST",
        f"{b}/feeds",
        user,
        201,
        json={"symbol_id": seed["btc"]["symbol_id"], "period": "minutes", "compression": 5},
    )
    assert feed["symbol"] == "BTC/USD" and feed["exchange"] == "kraken"
    err = await call(
        client,
        "POST",
        f"{b}/feeds",
        user,
        422,
        json={"symbol_id": 999, "period": "fortnights", "compression": 0},
    )
    assert {"period", "compression"} <= set(err["fields"])
    await call(client, "POST", f"{b}/feeds", user, 422, json={"symbol_id": 999, "period": "days"})
    details = await call(client, "GET", f"{b}/details", user)
    assert [f["feed_id"] for f in details["feeds"]] == [feed["feed_id"]]
    assert [s["str_id"] for s in details["strategies"]] == [strat["str_id"]]
    assert [e["ex_id"] for e in details["exchanges"]] == [ex["ex_id"]]
    # Sub-collections are pages like every list: {items, next_cursor}.
    assert await call(client, "GET", f"{b}/feeds", user) == {"items": [feed],
                                                             "next_cursor": None}
    assert await call(client, "GET", f"{b}/strategies", user) == {"items": [strat],
                                                                  "next_cursor": None}
    for i in range(3):
        await call(client, "POST", f"{b}/logs", user, 201, json={"message": f"line {i}"})
    logs = await call(client, "GET", f"{b}/last-log", user, params={"limit": 2})
    assert [entry["message"] for entry in logs["items"]] == ["line 2", "line 1"]
    older = await call(client, "GET", f"{b}/last-log", user,
                       params={"limit": 2, "cursor": logs["next_cursor"]})
    assert [entry["message"] for entry in older["items"]] == ["line 0"]
    assert older["next_cursor"] is None
    await call(client, "DELETE", f"{b}/feeds/{feed['feed_id']}", user, 204)
    await call(client, "DELETE", f"{b}/feeds/{feed['feed_id']}", user, 404)
    # Deleting the bot takes strategies and feeds with it: no orphans.
    await call(client, "DELETE", b, user, 204)
    await call(client, "GET", f"/strategies/bot-strategies/{strat['str_id']}", user, 404)


async def test_bot_strategy_params_are_checked(client, make_account):
    """Parameters are validated against the catalog definitions: unknown names, wrong
    types and out-of-range values are 422 naming the parameter."""
    _admin, user, seed, _ex = await _setup(client, make_account)
    bot = await make_bot(client, user)
    base = {"bot_id": bot["bot_id"], "cat_str_id": seed["strategy"]["cat_str_id"]}
    err = await call(
        client,
        "POST",
        "/strategies/bot-strategies",
        user,
        422,
        json={**base, "params": {"fast": "ten", "slow": 1, "nope": 1}},
    )
    assert set(err["fields"]) == {"params.fast", "params.slow", "params.nope"}
    err = await call(
        client,
        "POST",
        "/strategies/bot-strategies",
        user,
        422,
        json={**base, "leverage": 0, "size": -1},
    )
    assert {"leverage", "size"} <= set(err["fields"])
    err = await call(
        client, "POST", "/strategies/bot-strategies", user, 422, json={**base, "cat_str_id": 9999}
    )
    assert "cat_str_id" in err["fields"]
    strat = await call(client, "POST", "/strategies/bot-strategies", user, 201, json=base)
    upd = await call(
        client,
        "PATCH",
        f"/strategies/bot-strategies/{strat['str_id']}",
        user,
        json={"params": {"slow": 100}, "leverage": 3},
    )
    assert upd["params"] == {"slow": 100} and upd["leverage"] == 3
    await call(
        client,
        "PATCH",
        f"/strategies/bot-strategies/{strat['str_id']}",
        user,
        422,
        json={"params": {"fast": 0}},
    )
    listed = await call(
        client, "GET", "/strategies/bot-strategies", user, params={"bot_id": bot["bot_id"]}
    )
    assert [s["str_id"] for s in listed["items"]] == [strat["str_id"]]
    await call(client, "DELETE", f"/strategies/bot-strategies/{strat['str_id']}", user, 204)


async def test_strategy_catalog(client, make_account):
    """The catalog is readable by users and writable by admins, with checked definitions."""
    admin, user, seed, _ex = await _setup(client, make_account)
    listed = await call(client, "GET", "/strategies/catalog", user)
    assert [s["name"] for s in listed["items"]] == ["trend"]
    assert listed["items"][0]["params"]["fast"]["type"] == "int"
    one = await call(client, "GET", f"/strategies/catalog/{seed['strategy']['cat_str_id']}", user)
    assert one["name"] == "trend"
    await call(client, "POST", "/strategies/catalog", user, 403, json={"name": "x"})
    err = await call(
        client,
        "POST",
        "/strategies/catalog",
        admin,
        422,
        json={"name": "x", "params": {"a": {"type": "complex"}}},
    )
    assert "params" in err["fields"]
    await call(client, "POST", "/strategies/catalog", admin, 409, json={"name": "trend"})


async def test_bots_of_others_are_404(client, make_account):
    """Another user's bot: 404 on every bot route, and it cannot get strategies attached."""
    _admin, user, seed, _ex = await _setup(client, make_account)
    other = await make_account()
    bot = await make_bot(client, user)
    b = f"/bots/{bot['bot_id']}"
    for method, path, body in [
        ("GET", b, None),
        ("PATCH", b, {"name": "x"}),
        ("DELETE", b, None),
        ("GET", f"{b}/details", None),
        ("GET", f"{b}/feeds", None),
        ("GET", f"{b}/strategies", None),
        ("GET", f"{b}/stats", None),
        ("GET", f"{b}/last-log", None),
        ("POST", f"{b}/logs", {"message": "hi"}),
        ("POST", f"{b}/feeds", {"symbol_id": seed["btc"]["symbol_id"], "period": "days"}),
    ]:
        await call(client, method, path, other, 404, json=body)
    err = await call(
        client,
        "POST",
        "/strategies/bot-strategies",
        other,
        422,
        json={"bot_id": bot["bot_id"], "cat_str_id": seed["strategy"]["cat_str_id"]},
    )
    assert "bot_id" in err["fields"]


async def test_bot_delete_racing_order_never_orphans_it(client, make_account):
    """An order created at the same moment as its bot is deleted: either the order wins
    (delete is 409) or the delete wins (order is refused); never both succeed, which would
    leave an open order whose bot vanished."""
    import asyncio

    _admin, user, _seed, ex = await _setup(client, make_account)
    outcomes = set()
    for i in range(15):
        bot = await make_bot(client, user, name=f"race{i}", ex_ids=[ex["ex_id"]])
        body = {"ex_id": ex["ex_id"], "bot_id": bot["bot_id"], "symbol": "BTC/USD",
                "side": "buy", "order_type": "market", "volume": 1}
        created, deleted = await asyncio.gather(
            client.post("/api/v1/orm/orders", json=body, headers=user.headers),
            client.delete(f"/api/v1/orm/bots/{bot['bot_id']}", headers=user.headers))
        pair = (created.status, deleted.status)
        assert pair in {(201, 409), (422, 204)}, pair
        outcomes.add(pair)
    orphans = await call(client, "GET", "/orders/open", user)
    assert all(o["bot_id"] is not None for o in orphans["items"])
