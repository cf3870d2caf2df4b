"""Cursor pagination: limits, opaque cursors, and stability while rows are inserted."""

from __future__ import annotations

import asyncio

from tests.modes import standalone_only
from tests.rest.support import call, make_exchange, seed_catalog


async def test_limit_and_cursor_validation(client, make_account):
    """limit is 1..1000 (default 100); a forged cursor or one from another list is 422."""
    admin = await make_account("admin")
    for bad in ("0", "1001", "x"):
        err = await call(client, "GET", "/bots", admin, 422, params={"limit": bad})
        assert "limit" in err["fields"]
    for bad in ("garbage", "e30", "!!", "eyJzIjoiYm90cyIsImsiOi0xfQ"):
        err = await call(client, "GET", "/bots", admin, 422, params={"cursor": bad})
        assert "cursor" in err["fields"]
    for i in range(3):
        await call(client, "POST", "/bots", admin, 201, json={"name": f"b{i}"})
    page = await call(client, "GET", "/bots", admin, params={"limit": 2})
    assert page["next_cursor"]
    err = await call(client, "GET", "/orders", admin, 422, params={"cursor": page["next_cursor"]})
    assert "cursor" in err["fields"]


async def test_pages_cover_every_row_exactly_once(client, make_account):
    """Walking /bots with limit 7 over 50 rows returns each row once, in order."""
    user = await make_account()
    made = [
        (await call(client, "POST", "/bots", user, 201, json={"name": f"bot{i}"}))["bot_id"]
        for i in range(50)
    ]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = await call(client, "GET", "/bots", user, params=params)
        seen += [b["bot_id"] for b in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == made and pages == 8


async def test_no_duplicates_or_holes_under_concurrent_inserts(client, make_account):
    """While one client pages through orders (newest first), another inserts new orders:
    every order that existed at the first page is seen exactly once, none twice."""
    admin = await make_account("admin")
    user = await make_account()
    seed = await seed_catalog(client, admin)
    ex = await make_exchange(client, user, seed["kraken"]["cat_ex_id"])
    body = {
        "ex_id": ex["ex_id"],
        "symbol": "BTC/USD",
        "side": "buy",
        "order_type": "market",
        "volume": 1,
    }
    before = [
        (await call(client, "POST", "/orders", user, 201, json=body))["order_id"] for _ in range(60)
    ]
    stop = asyncio.Event()
    inserted: list[int] = []
    progressed = asyncio.Event()

    async def writer():
        while not stop.is_set():
            inserted.append(
                (await call(client, "POST", "/orders", user, 201, json=body))["order_id"]
            )
            progressed.set()

    task = asyncio.create_task(writer())
    try:
        seen, cursor = [], None
        while True:
            params = {"limit": 9, **({"cursor": cursor} if cursor else {})}
            page = await call(client, "GET", "/orders", user, params=params)
            seen += [o["order_id"] for o in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            # Let the writer insert at least one order between pages.
            progressed.clear()
            await asyncio.wait_for(progressed.wait(), 10)
    finally:
        stop.set()
        await task
    assert len(seen) == len(set(seen)), "an order was served twice"
    assert set(before) <= set(seen), "an order that existed was skipped"
    assert seen == sorted(seen, reverse=True)
    assert inserted, "the writer never ran"


async def test_forged_cursor_past_the_id_range_is_422(client, make_account):
    """A cursor forged to hold an id the column cannot store (past 2**31) is refused with
    a 422, not a server error."""
    import base64
    import json

    acct = await make_account()
    raw = json.dumps({"s": "bots", "k": 2**40}).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    resp = await client.get(f"/api/v1/orm/bots?cursor={cursor}", headers=acct.headers)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["code"] == "invalid_value"


@standalone_only("fullon's orders.order_id is a 32-bit serial")
async def test_big_order_ids_are_addressable(client, make_account):
    """Orders have 64-bit ids: an order whose id is past 2**31 can be fetched."""
    from fullon_gateway.keys import DB
    from tests.rest.support import make_exchange, make_order, seed_catalog

    admin = await make_account(role="admin")
    cat = await seed_catalog(client, admin)
    ex = await make_exchange(client, admin, cat["kraken"]["cat_ex_id"])
    await client.app[DB].execute("ALTER SEQUENCE orders_order_id_seq RESTART WITH 3000000000")
    order = await make_order(client, admin, ex["ex_id"])
    assert order["order_id"] >= 3_000_000_000
    resp = await client.get(f"/api/v1/orm/orders/{order['order_id']}", headers=admin.headers)
    assert resp.status == 200, await resp.text()
