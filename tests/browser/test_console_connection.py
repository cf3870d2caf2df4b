"""The connection in a real browser: always shown; after the socket drops the console
says "reconnecting", resubscribes with `since` and says "resumed" (gapless), with the
changes published meanwhile replayed, none missed or doubled."""

from __future__ import annotations

import time
from typing import Any

from fullon_gateway.keys import SOCKETS
from tests.conftest import PASSWORD
from tests.rest.support import call, make_exchange


async def test_dropped_socket_reconnects_and_resumes_gapless(
        console: Any, client: Any, make_account: Any, publisher: Any) -> None:
    """The test closes the server side of the socket while the browser is offline, so
    the orders published meanwhile can only arrive through the resume: the console
    shows reconnecting, then resumed · gapless with exactly those orders replayed."""
    admin = await make_account("admin")
    cat = await call(client, "POST", "/exchanges/catalog", admin, 201, json={"name": "kraken"})
    user = await make_account()
    ex = await make_exchange(client, user, cat["cat_ex_id"], name="main")
    ex_id = ex["ex_id"]
    await publisher.ticker("kraken", "BTC/USD", {"price": 65000.0, "time": time.time()})
    tab = await console()
    await tab.login(user.email, PASSWORD)
    await publisher.order(ex_id, {"order_id": "before", "symbol": "BTC/USD", "status": "open"})
    await tab.page.wait_for_selector('#orders-table tr[data-order="before"]')

    # Offline: the browser cannot reconnect until the test says so.
    await tab.page.context.set_offline(True)
    await client.app[SOCKETS].close_all(1012, "test drops the socket")
    await tab.wait_text("#conn", "reconnecting")
    missed = [f"gap-{i}" for i in range(3)]
    for order_id in missed:
        await publisher.order(ex_id, {"order_id": order_id, "symbol": "BTC/USD", "status": "open"})
    assert await tab.page.query_selector('#orders-table tr[data-order="gap-0"]') is None
    await tab.page.context.set_offline(False)

    await tab.wait_text("#conn", "resumed")
    await tab.wait_text("#conn", "3 replayed")
    assert "gapless" in await tab.text("#conn")
    ids = await tab.page.eval_on_selector_all("#orders-table tr[data-order]",
                                              "trs => trs.map(t => t.dataset.order).sort()")
    assert ids == sorted(["before", *missed])
    # And the live stream goes on after the resume.
    await publisher.order(ex_id, {"order_id": "after", "symbol": "BTC/USD", "status": "open"})
    await tab.page.wait_for_selector('#orders-table tr[data-order="after"]')

