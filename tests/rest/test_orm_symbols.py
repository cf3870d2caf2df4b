"""/api/v1/orm/symbols: list with filters, search, admin maintenance."""

from __future__ import annotations

from tests.rest.support import call, make_bot, seed_catalog


async def test_list_filter_and_search(client, make_account):
    """Symbols filter by exchange, base, futures; search matches a case-insensitive substring."""
    admin = await make_account("admin")
    user = await make_account()
    seed = await seed_catalog(client, admin)
    names = lambda body: [s["symbol"] for s in body["items"]]  # noqa: E731
    assert names(await call(client, "GET", "/symbols", user)) == [
        "BTC/USD",
        "ETH/USD",
        "BTC/USD:BTC",
    ]
    assert names(await call(client, "GET", "/symbols", user, params={"exchange": "bitmex"})) == [
        "BTC/USD:BTC"
    ]
    assert names(await call(client, "GET", "/symbols", user, params={"base": "btc"})) == [
        "BTC/USD",
        "BTC/USD:BTC",
    ]
    assert names(await call(client, "GET", "/symbols", user, params={"futures": "true"})) == [
        "BTC/USD:BTC"
    ]
    assert names(await call(client, "GET", "/symbols/search", user, params={"q": "eth"})) == [
        "ETH/USD"
    ]
    assert names(
        await call(
            client, "GET", "/symbols/search", user, params={"q": "btc", "exchange": "kraken"}
        )
    ) == ["BTC/USD"]
    assert names(await call(client, "GET", "/symbols/search", user, params={"q": "%"})) == []
    err = await call(client, "GET", "/symbols/search", user, 422)
    assert "q" in err["fields"]
    one = await call(client, "GET", f"/symbols/{seed['btc']['symbol_id']}", user)
    assert one["exchange"] == "kraken" and one["decimals"] == 8
    await call(client, "GET", "/symbols/99999", user, 404)


async def test_admin_maintains_symbols(client, make_account):
    """Admins create, update and delete symbols; duplicates are 409; a symbol used by a
    feed cannot be deleted (409); users get 403."""
    admin = await make_account("admin")
    user = await make_account()
    seed = await seed_catalog(client, admin)
    body = {
        "cat_ex_id": seed["kraken"]["cat_ex_id"],
        "symbol": "SOL/USD",
        "base": "SOL",
        "quote": "USD",
        "decimals": 4,
    }
    await call(client, "POST", "/symbols", user, 403, json=body)
    sol = await call(client, "POST", "/symbols", admin, 201, json=body)
    await call(client, "POST", "/symbols", admin, 409, json=body)
    err = await call(
        client,
        "POST",
        "/symbols",
        admin,
        422,
        json={**body, "symbol": "X", "decimals": 40, "updateframe": "7m"},
    )
    assert {"decimals", "updateframe"} <= set(err["fields"])
    upd = await call(
        client,
        "PATCH",
        f"/symbols/{sol['symbol_id']}",
        admin,
        json={"backtest": 90, "active": False},
    )
    assert upd["backtest"] == 90 and upd["active"] is False
    await call(client, "PATCH", f"/symbols/{sol['symbol_id']}", user, 403, json={"backtest": 1})
    bot = await make_bot(client, user)
    await call(
        client,
        "POST",
        f"/bots/{bot['bot_id']}/feeds",
        user,
        201,
        json={"symbol_id": sol["symbol_id"], "period": "minutes"},
    )
    err = await call(client, "DELETE", f"/symbols/{sol['symbol_id']}", admin, 409)
    assert err["code"] == "symbol_in_use"
    await call(client, "DELETE", f"/symbols/{seed['eth']['symbol_id']}", admin, 204)
    await call(client, "DELETE", f"/symbols/{seed['eth']['symbol_id']}", admin, 404)
