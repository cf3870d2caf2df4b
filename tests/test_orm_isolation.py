"""The isolation matrix: every /api/v1/orm route x (owner A by JWT, A's trade key, A's read
key, another user B, an admin, nobody) -> the expected status."""

from __future__ import annotations

from orm_support import ORM, api_key, call, make_bot, make_exchange, make_order, seed_catalog


async def _world(client, a, seed):
    ex = await make_exchange(client, a, seed["kraken"]["cat_ex_id"], "iso")
    bot = await make_bot(client, a, "iso-bot", [ex["ex_id"]])
    feed = await call(
        client,
        "POST",
        f"/bots/{bot['bot_id']}/feeds",
        a,
        201,
        json={"symbol_id": seed["btc"]["symbol_id"], "period": "days"},
    )
    strat = await call(
        client,
        "POST",
        "/strategies/bot-strategies",
        a,
        201,
        json={"bot_id": bot["bot_id"], "cat_str_id": seed["strategy"]["cat_str_id"]},
    )
    order = await make_order(client, a, ex["ex_id"], bot["bot_id"])
    trade = await call(
        client,
        "POST",
        "/trades",
        a,
        201,
        json={"ex_id": ex["ex_id"], "symbol": "BTC/USD", "side": "buy", "volume": 1, "price": 1},
    )
    return {
        "ex": ex["ex_id"],
        "bot": bot["bot_id"],
        "feed": feed["feed_id"],
        "str": strat["str_id"],
        "order": order["order_id"],
        "trade": trade["trade_id"],
    }


# (method, path, body) on objects owned by A. Reads: 200 for A, A's keys and admin,
# 404 for B. Writes: same, but 403 for the read key.
OWNED_READS = [
    "/exchanges/user-exchanges/{ex}",
    "/bots/{bot}",
    "/bots/{bot}/details",
    "/bots/{bot}/feeds",
    "/bots/{bot}/strategies",
    "/bots/{bot}/stats",
    "/bots/{bot}/last-log",
    "/strategies/bot-strategies/{str}",
    "/orders/{order}",
    "/trades/{trade}",
]
OWNED_WRITES = [
    ("PATCH", "/exchanges/user-exchanges/{ex}", {"active": True}),
    ("PATCH", "/bots/{bot}", {"description": "x"}),
    ("POST", "/bots/{bot}/logs", {"message": "hello"}),
    ("PATCH", "/strategies/bot-strategies/{str}", {"leverage": 2}),
]
# Lists any authenticated reader may call; B's answer must not contain A's rows.
LISTS = [
    ("/exchanges/user-exchanges", "ex_id", "ex"),
    ("/bots", "bot_id", "bot"),
    ("/strategies/bot-strategies", "str_id", "str"),
    ("/orders", "order_id", "order"),
    ("/orders/open", "order_id", "order"),
    ("/trades", "trade_id", "trade"),
    ("/views/bot-dashboard", "bot_id", "bot"),
]
PUBLIC_READS = [
    "/exchanges/catalog",
    "/symbols",
    "/symbols/search?q=BTC",
    "/strategies/catalog",
    "/users/me",
    "/trades/stats",
    "/trades/performance",
    "/views/portfolio-stats",
    "/views/trading-overview",
]
ADMIN_ONLY = [
    ("GET", "/users", None),
    ("POST", "/exchanges/catalog", {"name": "newex"}),
    ("POST", "/symbols", None),
    ("POST", "/strategies/catalog", {"name": "s2"}),
]


async def test_isolation_matrix(client, make_account):
    """Owner (JWT, trade key) and admin succeed; a read key succeeds on reads and gets 403 on
    writes; another user gets 404 on objects and empty lists; nobody gets 401."""
    admin = await make_account("admin")
    a, b = await make_account(), await make_account()
    seed = await seed_catalog(client, admin)
    w = await _world(client, a, seed)
    read_key = await api_key(client, a, ["read"])
    trade_key = await api_key(client, a, ["read", "trade"])
    b_key = await api_key(client, b, ["read", "trade"])
    results = {}

    async def status_of(method, path, who, body=None):
        headers = (
            {} if who is None else (who.headers if not isinstance(who, str) else {"X-API-Key": who})
        )
        resp = await client.request(method, ORM + path, headers=headers, json=body)
        await resp.read()
        return resp.status

    for tmpl in OWNED_READS:
        path = tmpl.format(**w)
        for name, who, want in [
            ("A", a, 200),
            ("A-trade", trade_key, 200),
            ("A-read", read_key, 200),
            ("B", b, 404),
            ("B-key", b_key, 404),
            ("admin", admin, 200),
            ("nobody", None, 401),
        ]:
            results[("GET", tmpl, name)] = (await status_of("GET", path, who), want)
    for method, tmpl, body in OWNED_WRITES:
        path = tmpl.format(**w)
        for name, who, want in [
            ("A", a, 200),
            ("A-trade", trade_key, 200),
            ("A-read", read_key, 403),
            ("B", b, 404),
            ("B-key", b_key, 404),
            ("admin", admin, 200),
            ("nobody", None, 401),
        ]:
            ok = 201 if method == "POST" else 200
            results[(method, tmpl, name)] = (
                await status_of(method, path, who, body),
                ok if want == 200 else want,
            )
    # Status changes and deletions, each on a fresh object so every caller has one to act on.
    for name, who, want in [
        ("A", a, 200),
        ("A-trade", trade_key, 200),
        ("A-read", read_key, 403),
        ("B", b, 404),
        ("admin", admin, 200),
        ("nobody", None, 401),
    ]:
        order = await make_order(client, a, w["ex"])
        results[("PATCH", "/orders/{id}/status", name)] = (
            await status_of(
                "PATCH", f"/orders/{order['order_id']}/status", who, {"status": "Open"}
            ),
            want,
        )
        ex = await make_exchange(client, a, seed["kraken"]["cat_ex_id"], f"del-{name}")
        bot = await make_bot(client, a, f"del-{name}")
        feed = await call(
            client,
            "POST",
            f"/bots/{bot['bot_id']}/feeds",
            a,
            201,
            json={"symbol_id": seed["btc"]["symbol_id"], "period": "days"},
        )
        strat = await call(
            client,
            "POST",
            "/strategies/bot-strategies",
            a,
            201,
            json={"bot_id": bot["bot_id"], "cat_str_id": seed["strategy"]["cat_str_id"]},
        )
        deletes = [
            f"/bots/{bot['bot_id']}/feeds/{feed['feed_id']}",
            f"/strategies/bot-strategies/{strat['str_id']}",
            f"/bots/{bot['bot_id']}",
            f"/exchanges/user-exchanges/{ex['ex_id']}",
        ]
        for path in deletes:
            results[("DELETE", path.split("/")[1], name)] = (
                await status_of("DELETE", path, who),
                204 if want == 200 else want,
            )
        results[("POST", "/bots/{id}/feeds", name)] = (
            await status_of(
                "POST",
                f"/bots/{w['bot']}/feeds",
                who,
                {"symbol_id": seed["eth"]["symbol_id"], "period": "hours"},
            ),
            201 if want == 200 else want,
        )
    # Creating on A's objects by others: B cannot use A's account or bot.
    body = {
        "ex_id": w["ex"],
        "symbol": "BTC/USD",
        "side": "buy",
        "order_type": "market",
        "volume": 1,
    }
    for name, who, want in [
        ("A", a, 201),
        ("A-read", read_key, 403),
        ("B", b, 422),
        ("admin", admin, 201),
        ("nobody", None, 401),
    ]:
        results[("POST", "/orders", name)] = (await status_of("POST", "/orders", who, body), want)
        trade = {k: v for k, v in body.items() if k != "order_type"} | {"price": 1}
        results[("POST", "/trades", name)] = (await status_of("POST", "/trades", who, trade), want)
    for name, who in [("A-read", read_key), ("B", b)]:
        results[("POST", "/bots", name)] = (
            await status_of("POST", "/bots", who, {"name": f"n-{name}"}),
            403 if name == "A-read" else 201,
        )
    mismatches = {k: v for k, v in results.items() if v[0] != v[1]}
    assert not mismatches, mismatches


async def test_lists_are_scoped_to_the_caller(client, make_account):
    """Every list shows A's rows to A, A's keys and an admin, and never to B."""
    admin = await make_account("admin")
    a, b = await make_account(), await make_account()
    seed = await seed_catalog(client, admin)
    w = await _world(client, a, seed)
    read_key = await api_key(client, a, ["read"])
    for path, key, obj in LISTS:
        for who, visible in [(a, True), (read_key, True), (admin, True), (b, False)]:
            body = await call(client, "GET", path, who)
            ids = [row[key] for row in body["items"]]
            assert (w[obj] in ids) is visible, (path, who, ids)
    b_stats = await call(client, "GET", "/trades/stats", b)
    assert b_stats["trades"] == 0
    b_port = await call(client, "GET", "/views/portfolio-stats", b)
    assert (b_port["exchanges"], b_port["bots"], b_port["trades"]) == (0, 0, 0)
    for path in PUBLIC_READS:
        for who in (a, b, read_key, admin):
            await call(client, "GET", path, who)
        resp = await client.get(ORM + path)
        assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"


async def test_admin_only_routes(client, make_account):
    """Admin routes are 403 for a user, their keys, and 401 for nobody."""
    admin = await make_account("admin")
    a = await make_account()
    trade_key = await api_key(client, a, ["read", "trade"])
    for method, path, body in ADMIN_ONLY:
        for who in (a, trade_key):
            await call(client, method, path, who, 403, json=body or {})
        resp = await client.request(method, ORM + path, json=body or {})
        assert resp.status == 401
    await call(client, "GET", "/users", admin)
