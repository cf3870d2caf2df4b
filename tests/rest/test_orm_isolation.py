"""The isolation matrix: every /api/v1/orm route x (owner A by JWT, A's trade key, A's read
key, another user B, an admin, nobody) -> the expected status. A test also checks that
every platform route registered on the router has a row in the matrix."""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.modes import every_db_mode
from tests.rest.support import ORM, api_key, call, make_bot, make_exchange, make_order, seed_catalog

CALLERS = ("A", "A-trade", "A-read", "B", "admin", "nobody")
_counter = itertools.count()


def uniq(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


# Expected status per caller, by kind of route. "ok" is replaced by the route's success code.
EXPECT: dict[str, dict[str, int | str]] = {
    # A's object: readers of A see it; B gets 404 as if it did not exist.
    "owned-read": {"A": "ok", "A-trade": "ok", "A-read": "ok", "B": 404, "admin": "ok",
                   "nobody": 401},
    "owned-write": {"A": "ok", "A-trade": "ok", "A-read": 403, "B": 404, "admin": "ok",
                    "nobody": 401},
    # Creating something that refers to A's objects: B cannot refer to them (422).
    "create-ref": {"A": "ok", "A-trade": "ok", "A-read": 403, "B": 422, "admin": "ok",
                   "nobody": 401},
    # Creating one's own object, or a read of one's own data / of the shared catalog.
    "create-own": {"A": "ok", "A-trade": "ok", "A-read": 403, "B": "ok", "admin": "ok",
                   "nobody": 401},
    "read-any": {"A": "ok", "A-trade": "ok", "A-read": "ok", "B": "ok", "admin": "ok",
                 "nobody": 401},
    "admin": {"A": 403, "A-trade": 403, "A-read": 403, "B": 403, "admin": "ok", "nobody": 401},
}


@dataclass
class World:
    client: Any
    a: Any
    b: Any
    admin: Any
    seed: dict[str, Any]
    ex: int
    bot: int
    str_id: int
    order: int
    trade: int

    async def fresh_exchange(self) -> int:
        return int((await make_exchange(self.client, self.a, self.seed["kraken"]["cat_ex_id"],
                                        uniq("ex-")))["ex_id"])

    async def fresh_bot(self) -> int:
        return int((await make_bot(self.client, self.a, uniq("bot-")))["bot_id"])

    async def fresh_feed(self) -> tuple[int, int]:
        bot = await self.fresh_bot()
        # In front of fullon a feed hangs off one of the bot's strategies.
        await call(self.client, "POST", "/strategies/bot-strategies", self.a, 201,
                   json={"bot_id": bot, "cat_str_id": self.seed["strategy"]["cat_str_id"]})
        feed = await call(self.client, "POST", f"/bots/{bot}/feeds", self.a, 201,
                          json={"symbol_id": self.seed["btc"]["symbol_id"], "period": "days"})
        return bot, int(feed["feed_id"])

    async def fresh_strategy(self) -> int:
        body = {"bot_id": self.bot, "cat_str_id": self.seed["strategy"]["cat_str_id"]}
        return int((await call(self.client, "POST", "/strategies/bot-strategies", self.a, 201,
                               json=body))["str_id"])

    async def fresh_order(self) -> int:
        return int((await make_order(self.client, self.a, self.ex))["order_id"])

    async def fresh_symbol(self) -> int:
        body = {"cat_ex_id": self.seed["kraken"]["cat_ex_id"], "symbol": uniq("S/"),
                "base": "S", "quote": "USD"}
        return int((await call(self.client, "POST", "/symbols", self.admin, 201,
                               json=body))["symbol_id"])

    async def fresh_user(self) -> int:
        body = {"email": uniq("victim") + "@example.com", "password": "long-enough"}
        return int((await call(self.client, "POST", "/users", self.admin, 201,
                               json=body))["user_id"])


Make = Callable[[World], Awaitable[tuple[str, Any]]]


def fixed(path: str, body: Any = None) -> Make:
    async def make(w: World) -> tuple[str, Any]:
        return path.format(ex=w.ex, bot=w.bot, str=w.str_id, order=w.order, trade=w.trade,
                           cat=w.seed["kraken"]["cat_ex_id"],
                           cat_str=w.seed["strategy"]["cat_str_id"],
                           sym=w.seed["btc"]["symbol_id"], a=w.a.user_id), body
    return make


def dynamic(fn: Callable[[World], Awaitable[tuple[str, Any]]]) -> Make:
    return fn


async def _new_exchange_body(w: World) -> tuple[str, Any]:
    return "/exchanges/user-exchanges", {"cat_ex_id": w.seed["kraken"]["cat_ex_id"],
                                         "name": uniq("new-")}


async def _new_bot_body(w: World) -> tuple[str, Any]:
    return "/bots", {"name": uniq("new-bot-")}


async def _order_body(w: World) -> tuple[str, Any]:
    return "/orders", {"ex_id": w.ex, "bot_id": w.bot, "symbol": "BTC/USD", "side": "buy",
                       "order_type": "market", "volume": 1}


async def _trade_body(w: World) -> tuple[str, Any]:
    return "/trades", {"ex_id": w.ex, "symbol": "BTC/USD", "side": "buy", "volume": 1,
                       "price": 1}


async def _strategy_body(w: World) -> tuple[str, Any]:
    return "/strategies/bot-strategies", {"bot_id": w.bot,
                                          "cat_str_id": w.seed["strategy"]["cat_str_id"]}


async def _del_exchange(w: World) -> tuple[str, Any]:
    return f"/exchanges/user-exchanges/{await w.fresh_exchange()}", None


async def _del_bot(w: World) -> tuple[str, Any]:
    return f"/bots/{await w.fresh_bot()}", None


async def _del_feed(w: World) -> tuple[str, Any]:
    bot, feed = await w.fresh_feed()
    return f"/bots/{bot}/feeds/{feed}", None


async def _del_strategy(w: World) -> tuple[str, Any]:
    return f"/strategies/bot-strategies/{await w.fresh_strategy()}", None


async def _order_status(w: World) -> tuple[str, Any]:
    return f"/orders/{await w.fresh_order()}/status", {"status": "Open"}


async def _del_symbol(w: World) -> tuple[str, Any]:
    return f"/symbols/{await w.fresh_symbol()}", None


async def _del_user(w: World) -> tuple[str, Any]:
    return f"/users/{await w.fresh_user()}", None


async def _patch_user(w: World) -> tuple[str, Any]:
    return f"/users/{await w.fresh_user()}", {"name": "renamed"}


async def _new_user(w: World) -> tuple[str, Any]:
    return "/users", {"email": uniq("new") + "@example.com", "password": "long-enough"}


async def _new_catalog(w: World) -> tuple[str, Any]:
    return "/exchanges/catalog", {"name": uniq("cat")}


async def _new_symbol(w: World) -> tuple[str, Any]:
    return "/symbols", {"cat_ex_id": w.seed["kraken"]["cat_ex_id"], "symbol": uniq("N/"),
                        "base": "N", "quote": "USD"}


async def _new_cat_strategy(w: World) -> tuple[str, Any]:
    return "/strategies/catalog", {"name": uniq("strat")}


# (method, route template as registered) -> (kind, success status, how to build the call)
MATRIX: dict[tuple[str, str], tuple[str, int, Make]] = {
    ("GET", "/users/me"): ("read-any", 200, fixed("/users/me")),
    ("PATCH", "/users/me"): ("create-own", 200, fixed("/users/me", {"name": "me"})),
    ("GET", "/users"): ("admin", 200, fixed("/users")),
    ("POST", "/users"): ("admin", 201, dynamic(_new_user)),
    ("GET", "/users/{user_id}"): ("admin", 200, fixed("/users/{a}")),
    ("PATCH", "/users/{user_id}"): ("admin", 200, dynamic(_patch_user)),
    ("DELETE", "/users/{user_id}"): ("admin", 204, dynamic(_del_user)),
    ("GET", "/exchanges/catalog"): ("read-any", 200, fixed("/exchanges/catalog")),
    ("POST", "/exchanges/catalog"): ("admin", 201, dynamic(_new_catalog)),
    ("GET", "/exchanges/catalog/{cat_ex_id}"): ("read-any", 200,
                                                fixed("/exchanges/catalog/{cat}")),
    ("GET", "/exchanges/catalog/{cat_ex_id}/symbols"): (
        "read-any", 200, fixed("/exchanges/catalog/{cat}/symbols")),
    ("GET", "/exchanges/user-exchanges"): ("read-any", 200, fixed("/exchanges/user-exchanges")),
    ("POST", "/exchanges/user-exchanges"): ("create-own", 201, dynamic(_new_exchange_body)),
    ("GET", "/exchanges/user-exchanges/{ex_id}"): (
        "owned-read", 200, fixed("/exchanges/user-exchanges/{ex}")),
    ("PATCH", "/exchanges/user-exchanges/{ex_id}"): (
        "owned-write", 200, fixed("/exchanges/user-exchanges/{ex}", {"active": True})),
    ("DELETE", "/exchanges/user-exchanges/{ex_id}"): ("owned-write", 204,
                                                      dynamic(_del_exchange)),
    ("GET", "/symbols"): ("read-any", 200, fixed("/symbols")),
    ("POST", "/symbols"): ("admin", 201, dynamic(_new_symbol)),
    ("GET", "/symbols/search"): ("read-any", 200, fixed("/symbols/search?q=BTC")),
    ("GET", "/symbols/{symbol_id}"): ("read-any", 200, fixed("/symbols/{sym}")),
    ("PATCH", "/symbols/{symbol_id}"): ("admin", 200, fixed("/symbols/{sym}", {"backtest": 7})),
    ("DELETE", "/symbols/{symbol_id}"): ("admin", 204, dynamic(_del_symbol)),
    ("GET", "/bots"): ("read-any", 200, fixed("/bots")),
    ("POST", "/bots"): ("create-own", 201, dynamic(_new_bot_body)),
    ("GET", "/bots/{bot_id}"): ("owned-read", 200, fixed("/bots/{bot}")),
    ("PATCH", "/bots/{bot_id}"): ("owned-write", 200, fixed("/bots/{bot}", {"description": "d"})),
    ("DELETE", "/bots/{bot_id}"): ("owned-write", 204, dynamic(_del_bot)),
    ("GET", "/bots/{bot_id}/details"): ("owned-read", 200, fixed("/bots/{bot}/details")),
    ("GET", "/bots/{bot_id}/feeds"): ("owned-read", 200, fixed("/bots/{bot}/feeds")),
    ("POST", "/bots/{bot_id}/feeds"): ("owned-write", 201, fixed(
        "/bots/{bot}/feeds", {"symbol_id": 0, "period": "hours"})),
    ("DELETE", "/bots/{bot_id}/feeds/{feed_id}"): ("owned-write", 204, dynamic(_del_feed)),
    ("GET", "/bots/{bot_id}/strategies"): ("owned-read", 200, fixed("/bots/{bot}/strategies")),
    ("GET", "/bots/{bot_id}/stats"): ("owned-read", 200, fixed("/bots/{bot}/stats")),
    ("GET", "/bots/{bot_id}/last-log"): ("owned-read", 200, fixed("/bots/{bot}/last-log")),
    ("POST", "/bots/{bot_id}/logs"): ("owned-write", 201,
                                      fixed("/bots/{bot}/logs", {"message": "hi"})),
    ("GET", "/strategies/catalog"): ("read-any", 200, fixed("/strategies/catalog")),
    ("POST", "/strategies/catalog"): ("admin", 201, dynamic(_new_cat_strategy)),
    ("GET", "/strategies/catalog/{cat_str_id}"): ("read-any", 200,
                                                  fixed("/strategies/catalog/{cat_str}")),
    ("GET", "/strategies/bot-strategies"): ("read-any", 200,
                                            fixed("/strategies/bot-strategies")),
    ("POST", "/strategies/bot-strategies"): ("create-ref", 201, dynamic(_strategy_body)),
    ("GET", "/strategies/bot-strategies/{str_id}"): (
        "owned-read", 200, fixed("/strategies/bot-strategies/{str}")),
    ("PATCH", "/strategies/bot-strategies/{str_id}"): (
        "owned-write", 200, fixed("/strategies/bot-strategies/{str}", {"leverage": 2})),
    ("DELETE", "/strategies/bot-strategies/{str_id}"): ("owned-write", 204,
                                                        dynamic(_del_strategy)),
    ("GET", "/orders"): ("read-any", 200, fixed("/orders")),
    ("POST", "/orders"): ("create-ref", 201, dynamic(_order_body)),
    ("GET", "/orders/open"): ("read-any", 200, fixed("/orders/open")),
    ("GET", "/orders/{order_id}"): ("owned-read", 200, fixed("/orders/{order}")),
    ("PATCH", "/orders/{order_id}/status"): ("owned-write", 200, dynamic(_order_status)),
    ("GET", "/trades"): ("read-any", 200, fixed("/trades")),
    ("POST", "/trades"): ("create-ref", 201, dynamic(_trade_body)),
    ("GET", "/trades/stats"): ("read-any", 200, fixed("/trades/stats")),
    ("GET", "/trades/performance"): ("read-any", 200, fixed("/trades/performance")),
    ("GET", "/trades/{trade_id}"): ("owned-read", 200, fixed("/trades/{trade}")),
    ("GET", "/views/bot-dashboard"): ("read-any", 200, fixed("/views/bot-dashboard")),
    ("GET", "/views/portfolio-stats"): ("read-any", 200, fixed("/views/portfolio-stats")),
    ("GET", "/views/trading-overview"): ("read-any", 200, fixed("/views/trading-overview")),
}


async def _world(client, make_account) -> tuple[World, dict[str, Any]]:
    admin = await make_account("admin")
    a, b = await make_account(), await make_account()
    seed = await seed_catalog(client, admin)
    ex = await make_exchange(client, a, seed["kraken"]["cat_ex_id"], "iso")
    bot = await make_bot(client, a, "iso-bot", [ex["ex_id"]])
    strat = await call(client, "POST", "/strategies/bot-strategies", a, 201, json={
        "bot_id": bot["bot_id"], "cat_str_id": seed["strategy"]["cat_str_id"]})
    order = await make_order(client, a, ex["ex_id"], bot["bot_id"])
    trade = await call(client, "POST", "/trades", a, 201, json={
        "ex_id": ex["ex_id"], "symbol": "BTC/USD", "side": "buy", "volume": 1, "price": 1})
    w = World(client, a, b, admin, seed, ex["ex_id"], bot["bot_id"], strat["str_id"],
              order["order_id"], trade["trade_id"])
    who = {"A": a, "A-trade": await api_key(client, a, ["read", "trade"]),
           "A-read": await api_key(client, a, ["read"]), "B": b, "admin": admin,
           "nobody": None}
    return w, who


def test_every_platform_route_is_in_the_matrix():
    """Each /api/v1/orm route on the app's router (except API keys, which the auth work
    covers) has a row in MATRIX, so a new route cannot skip the isolation check."""
    from fullon_gateway.handlers.orm import OrmHandler

    registered = set()
    for route in OrmHandler().routes():
        path = re.sub(r"^/api/v1/orm", "", route.path)
        registered.add((route.method, path))
    assert registered == set(MATRIX), registered ^ set(MATRIX)


@every_db_mode
async def test_isolation_matrix(client, make_account):
    """Every route answers each caller with the status its kind prescribes: owner and
    admin succeed, a read key cannot write (403), another user gets 404 on A's objects
    and 422 when referring to them, users get 403 on admin routes, nobody gets 401."""
    w, who = await _world(client, make_account)
    mismatches = {}
    for (method, template), (kind, ok, make) in MATRIX.items():
        for name in CALLERS:
            path, body = await make(w)
            if isinstance(body, dict) and body.get("symbol_id") == 0:
                body = {**body, "symbol_id": w.seed["eth"]["symbol_id"]}
            caller = who[name]
            headers = ({} if caller is None else
                       {"X-API-Key": caller} if isinstance(caller, str) else caller.headers)
            resp = await client.request(method, ORM + path, headers=headers, json=body)
            await resp.read()
            want = EXPECT[kind][name]
            want = ok if want == "ok" else want
            if resp.status != want:
                mismatches[(method, template, name)] = (resp.status, want)
    assert not mismatches, mismatches


@every_db_mode
async def test_lists_are_scoped_to_the_caller(client, make_account):
    """Every list shows A's rows to A, A's keys and an admin, and never to B."""
    w, who = await _world(client, make_account)
    lists = [("/exchanges/user-exchanges", "ex_id", w.ex), ("/bots", "bot_id", w.bot),
             ("/strategies/bot-strategies", "str_id", w.str_id),
             ("/orders", "order_id", w.order), ("/orders/open", "order_id", w.order),
             ("/trades", "trade_id", w.trade), ("/views/bot-dashboard", "bot_id", w.bot)]
    for path, key, obj in lists:
        for name in ("A", "A-trade", "A-read", "admin", "B"):
            body = await call(client, "GET", path, who[name])
            ids = [row[key] for row in body["items"]]
            assert (obj in ids) is (name != "B"), (path, name, ids)
    b_stats = await call(client, "GET", "/trades/stats", w.b)
    assert b_stats["trades"] == 0
    b_port = await call(client, "GET", "/views/portfolio-stats", w.b)
    assert (b_port["exchanges"], b_port["bots"], b_port["trades"]) == (0, 0, 0)
    resp = await client.get(ORM + "/bots")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
