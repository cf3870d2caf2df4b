"""Isolation: a user sees only their own accounts and bots; filters never widen access."""

from __future__ import annotations

import pytest

from fullon_gateway.keys import AUTH, DB
from tests.modes import DB_MODES
from tests.stream.support import (
    connect,
    make_bot,
    make_exchange,
    publisher,
    recv,
    request,
    subscribe,
)

# The same tests, on the gateway's own schema and attached to fullon's (both shapes).
pytestmark = pytest.mark.parametrize("db_mode", DB_MODES, indirect=True)


async def test_user_never_receives_another_users_private_data(client, make_account):
    """User A's filterless orders/accounts/bots subscriptions carry only A's data; B's
    changes published in between never reach A."""
    a = await make_account()
    b = await make_account()
    ex_a, ex_b = await make_exchange(client, a.user_id), await make_exchange(client, b.user_id)
    bot_a, bot_b = await make_bot(client, a.user_id), await make_bot(client, b.user_id)
    pub = publisher(client)
    await pub.order(ex_b, {"order_id": "secret", "status": "open"})
    await pub.balances(ex_b, {"USD": 1_000_000})
    await pub.bot_status(bot_b, {"status": "secret"})
    ws = await connect(client, a.token)
    _ack, snap = await subscribe(ws, {"stream": "orders"}, request_id="o")
    assert snap["result"]["orders"] == []
    _ack, snap = await subscribe(ws, {"stream": "accounts"}, request_id="a")
    assert [acc["ex_id"] for acc in snap["result"]["accounts"]] == [ex_a]
    _ack, snap = await subscribe(ws, {"stream": "bots"}, request_id="b")
    assert snap["result"]["bots"] == []
    for _ in range(3):  # B's changes first, then A's: A must see only its own, in order
        await pub.order(ex_b, {"order_id": "secret", "status": "filled"})
        await pub.balances(ex_b, {"USD": 2})
        await pub.bot_status(bot_b, {"status": "secret"})
    await pub.order(ex_a, {"order_id": "mine"})
    await pub.balances(ex_a, {"USD": 3})
    await pub.bot_status(bot_a, {"status": "mine"})
    got = [await recv(ws) for _ in range(3)]
    assert [f["result"].get("ex_id", f["result"].get("bot_id")) for f in got] == [ex_a, ex_a,
                                                                                 bot_a]
    assert (await request(ws, "ping", {}, request_id="p"))["result"] == "pong"
    await ws.close()


async def test_crafted_filters_cannot_widen_access(client, make_account):
    """Naming another user's account or bot in a filter is NOT_FOUND (same as a missing
    one); process is FORBIDDEN for non-admins; one-shot gets follow the same rules."""
    a = await make_account()
    b = await make_account()
    await make_exchange(client, a.user_id)
    bot_a = await make_bot(client, a.user_id)
    ex_b, bot_b = await make_exchange(client, b.user_id), await make_bot(client, b.user_id)
    ws = await connect(client, a.token)
    for params in ({"stream": "orders", "ex_id": ex_b},
                   {"stream": "orders", "bot_id": bot_b},
                   {"stream": "accounts", "ex_id": ex_b},
                   {"stream": "bots", "bot_id": bot_b},
                   {"stream": "orders", "ex_id": 999_999}):
        reply = await request(ws, "subscribe", params, request_id="x")
        assert reply["success"] is False and reply["error_code"] == "NOT_FOUND", params
    reply = await request(ws, "subscribe", {"stream": "process"}, request_id="p")
    assert reply["error_code"] == "FORBIDDEN"
    for action, params in (("get_balance", {"ex_id": ex_b}), ("get_positions", {"ex_id": ex_b}),
                           ("get_order_status", {"ex_id": ex_b}),
                           ("get_bot_status", {"bot_id": bot_b}),
                           ("stream_order_queue", {"ex_id": ex_b})):
        reply = await request(ws, action, params, request_id="g")
        assert reply["error_code"] == "NOT_FOUND", action
    reply = await request(ws, "subscribe", {"stream": "orders", "ex_id": 1, "user_id": b.user_id},
                          request_id="u")
    assert reply["error_code"] == "INVALID_PARAMS"
    _ack, snap = await subscribe(ws, {"stream": "bots", "bot_id": bot_a})
    assert snap["result"]["bots"] == []
    await ws.close()


async def test_admin_sees_every_account(client, make_account):
    """An admin's filterless orders subscription covers every user's accounts."""
    admin = await make_account("admin")
    a = await make_account()
    b = await make_account()
    ex_a, ex_b = await make_exchange(client, a.user_id), await make_exchange(client, b.user_id)
    ws = await connect(client, admin.token)
    await subscribe(ws, {"stream": "orders"})
    pub = publisher(client)
    await pub.order(ex_a, {"order_id": "1"})
    await pub.order(ex_b, {"order_id": "2"})
    assert [(await recv(ws))["result"]["ex_id"] for _ in range(2)] == [ex_a, ex_b]
    await ws.close()


async def test_ownership_change_is_applied_to_open_subscriptions(client, make_account):
    """When an account moves to another user (announced as an ownership change), the old
    owner's subscriptions stop carrying it: a filterless one gets a fresh snapshot without
    it, a named one is ended; the new owner gets it."""
    a = await make_account()
    b = await make_account()
    ex_keep = await make_exchange(client, a.user_id, "keep")
    ex_move = await make_exchange(client, a.user_id, "move")
    ws = await connect(client, a.token)
    await subscribe(ws, {"stream": "orders"}, request_id="all")
    await subscribe(ws, {"stream": "orders", "ex_id": ex_move}, request_id="one")
    await client.app[DB].execute("UPDATE exchanges SET user_id = $1 WHERE ex_id = $2",
                                 b.user_id, ex_move)
    auth = client.app[AUTH]
    await auth.announce("ownership", a.user_id)
    await auth.announce("ownership", b.user_id)
    seen = {}
    while len(seen) < 2:
        frame = await recv(ws)
        seen[frame["action"]] = frame
    assert seen["subscription_ended"]["stream_key"] == f"orders:{ex_move}"
    assert seen["orders_update"]["snapshot"] is True
    assert seen["orders_update"]["request_id"] == "all"
    pub = publisher(client)
    await pub.order(ex_move, {"order_id": "moved"})
    await pub.order(ex_keep, {"order_id": "kept"})
    nxt = await recv(ws)
    assert nxt["result"].get("order_id") == "kept", nxt
    ws_b = await connect(client, b.token)
    await subscribe(ws_b, {"stream": "orders", "ex_id": ex_move})
    await ws.close()
    await ws_b.close()


async def test_new_account_joins_all_of_mine_subscription(client, make_account):
    """A filterless orders subscription picks up an account created later (announced as an
    ownership change): fresh snapshot, then that account's orders."""
    a = await make_account()
    ws = await connect(client, a.token)
    _ack, snap = await subscribe(ws, {"stream": "orders"})
    assert snap["result"]["orders"] == []
    ex_id = await make_exchange(client, a.user_id, "later")
    await client.app[AUTH].announce("ownership", a.user_id)
    frame = await recv(ws)
    assert frame["snapshot"] is True and frame["result"]["orders"] == []
    await publisher(client).order(ex_id, {"order_id": "new"})
    frame = await recv(ws)
    assert frame["result"]["order_id"] == "new" and frame["result"]["ex_id"] == ex_id
    await ws.close()


async def test_rest_account_changes_reach_open_subscriptions(client, make_account):
    """Creating and deleting an exchange account over REST (which announces the ownership
    change) updates an open "all my accounts" orders subscription: the new account's
    orders arrive; after the delete they no longer do."""
    acct = await make_account()
    cat = await client.app[DB].fetchval(
        "INSERT INTO cat_exchanges (name) VALUES ('kraken') RETURNING cat_ex_id")
    ws = await connect(client, acct.token)
    await subscribe(ws, {"stream": "orders"})
    resp = await client.post("/api/v1/orm/exchanges/user-exchanges",
                             json={"cat_ex_id": cat, "name": "rest"}, headers=acct.headers)
    assert resp.status == 201, await resp.text()
    ex_id = (await resp.json())["ex_id"]
    frame = await recv(ws)
    assert frame["snapshot"] is True  # re-resolved with the new account
    pub = publisher(client)
    await pub.order(ex_id, {"order_id": "r1"})
    assert (await recv(ws))["result"]["order_id"] == "r1"
    # The order above lives only in Redis, so Postgres lets the account go.
    resp = await client.delete(f"/api/v1/orm/exchanges/user-exchanges/{ex_id}",
                               headers=acct.headers)
    assert resp.status == 204, await resp.text()
    frame = await recv(ws)
    assert frame["snapshot"] is True and frame["result"]["orders"] == []
    await pub.order(ex_id, {"order_id": "gone"})
    assert (await request(ws, "ping", {}, request_id="p"))["result"] == "pong"
    await ws.close()
