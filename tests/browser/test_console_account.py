"""My account in a real browser: an order appears live, changes status and moves to
the fills when it fills; balances, positions and bot status arrive live."""

from __future__ import annotations

from typing import Any

from tests.conftest import PASSWORD
from tests.rest.support import call, make_bot, make_exchange, make_order


async def _account_with_bot(client: Any, make_account: Any) -> tuple[Any, int, int]:
    admin = await make_account("admin")
    cat = await call(client, "POST", "/exchanges/catalog", admin, 201, json={"name": "kraken"})
    user = await make_account()
    ex = await make_exchange(client, user, cat["cat_ex_id"], name="main-kraken")
    bot = await make_bot(client, user, name="trend-bot", ex_ids=[ex["ex_id"]])
    return user, ex["ex_id"], bot["bot_id"]


async def test_order_appears_changes_status_and_fills(
        console: Any, client: Any, make_account: Any, publisher: Any) -> None:
    """A published order shows in Open orders; a status change updates its row; once
    filled it leaves Open orders and is listed under Recent fills with its price."""
    user, ex_id, bot_id = await _account_with_bot(client, make_account)
    tab = await console()
    await tab.login(user.email, PASSWORD)
    await tab.wait_text("#orders-panel .empty", "No open orders")

    order = {"order_id": "ord-1", "symbol": "BTC/USD", "side": "buy", "price": 64000.5,
             "volume": 0.25, "status": "open", "bot_id": bot_id}
    await publisher.order(ex_id, order)
    row = '#orders-table tr[data-order="ord-1"]'
    await tab.wait_text(row, "open")
    cells = await tab.page.eval_on_selector_all(row + " td", "tds => tds.map(t => t.textContent)")
    assert cells == ["main-kraken", "BTC/USD", "buy", "64,000.50", "0.25", "open",
                     str(bot_id), "ord-1"]
    assert await tab.text("#orders-count") == "(1)"

    await publisher.order(ex_id, {**order, "status": "partially_filled"})
    await tab.wait_text(row, "partially_filled")

    await publisher.order(ex_id, {**order, "status": "filled"})
    await tab.page.wait_for_selector(row, state="detached")
    fill = f'#fills-table tr[data-fill="order:{ex_id}|ord-1"]'
    await tab.wait_text(fill, "64,000.50")
    assert "BTC/USD" in await tab.text(fill)
    assert await tab.page.is_visible("#orders-panel .empty")


async def _fills(tab: Any) -> list[str]:
    return list(await tab.page.eval_on_selector_all(
        "#fills-table tr[data-fill]", "trs => trs.map(t => t.dataset.fill)"))


async def test_a_filled_order_with_a_stored_trade_is_one_fill(
        console: Any, client: Any, make_account: Any, publisher: Any) -> None:
    """An order that filled and whose trade is stored is listed once under Recent fills
    (as the stored trade), whether the filled order comes in the orders snapshot or
    live after the trades were read; a filled order with no stored trade still is."""
    user, ex_id, bot_id = await _account_with_bot(client, make_account)
    orders = [await make_order(client, user, ex_id, bot_id=bot_id) for _ in range(2)]
    trades = [await call(client, "POST", "/trades", user, 201, json={
        "ex_id": ex_id, "order_id": o["order_id"], "symbol": "BTC/USD", "side": "buy",
        "volume": "0.1", "price": "100", "fee": "0.1"}) for o in orders]

    def filled(order_id: Any) -> dict[str, Any]:
        return {"order_id": order_id, "symbol": "BTC/USD", "side": "buy", "price": 100.0,
                "volume": 0.1, "status": "filled", "bot_id": bot_id}

    # In the snapshot: the first order (its trade is stored) and a marker (none stored).
    await publisher.order(ex_id, filled(orders[0]["order_id"]))
    await publisher.order(ex_id, filled("marker-1"))
    tab = await console()
    await tab.login(user.email, PASSWORD)
    await tab.page.wait_for_selector(f'#fills-table tr[data-fill="order:{ex_id}|marker-1"]')
    await tab.page.wait_for_selector(f'#fills-table tr[data-fill="trade:{trades[1]["trade_id"]}"]')
    # Live, after the trades were read: the second order, then a marker that can only
    # show once the second order's change has been handled (one stream, in order).
    await publisher.order(ex_id, filled(orders[1]["order_id"]))
    await publisher.order(ex_id, filled("marker-2"))
    await tab.page.wait_for_selector(f'#fills-table tr[data-fill="order:{ex_id}|marker-2"]')
    assert sorted(await _fills(tab)) == sorted([
        f"trade:{trades[0]['trade_id']}", f"trade:{trades[1]['trade_id']}",
        f"order:{ex_id}|marker-1", f"order:{ex_id}|marker-2"])


async def test_balances_positions_and_bot_status_arrive_live(
        console: Any, client: Any, make_account: Any, publisher: Any) -> None:
    """The Account view shows each exchange account's balances and positions and each
    bot's status and last log lines, and follows published changes."""
    user, ex_id, bot_id = await _account_with_bot(client, make_account)
    await call(client, "POST", f"/bots/{bot_id}/logs", user, 201,
               json={"level": "warning", "message": "spread too wide, <waiting>"})
    tab = await console()
    await tab.login(user.email, PASSWORD)
    await tab.view("account")
    card = f'.account-card[data-ex-id="{ex_id}"]'
    await tab.wait_text(card + " h3", "main-kraken")
    bot = f'.bot-card[data-bot-id="{bot_id}"]'
    await tab.wait_text(bot + " .name", "trend-bot")
    await tab.wait_text(bot + " .logs", "spread too wide, <waiting>")

    await publisher.balances(ex_id, {"USD": {"free": 1000.0, "used": 250.0},
                                     "BTC": {"total": 0.5, "free": 0.5, "used": 0.0}})
    await publisher.positions(ex_id, [{"symbol": "BTC/USD", "size": -0.1, "entry_price": 65000}])
    await tab.wait_text(card + " .balances", "1,250")
    await tab.wait_text(card + " .positions", "-0.1")
    assert "65,000.00" in await tab.text(card + " .positions")

    await publisher.bot_status(bot_id, {"status": "running", "pnl": 12.5})
    await tab.wait_text(bot + " .state", "running")
    await tab.wait_text(bot + " .kv", "12.5")
    await publisher.bot_status(bot_id, {"status": "error", "message": "exchange down"})
    await tab.wait_text(bot + " .state", "error")
    await tab.wait_text(bot + " .kv", "exchange down")
