"""The console in a real browser: logging in through the form, the markets panel
(picker, live ticker changes with a flash, quote age and the stale mark), escaping,
errors shown, logout, and the phone layout."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import PASSWORD


async def test_login_form_shows_a_wrong_password(console: Any, make_account: Any) -> None:
    """A wrong password is answered on the form itself, and no panel opens."""
    user = await make_account()
    tab = await console()
    await tab.open()
    await tab.page.fill("#login-form input[name=email]", user.email)
    await tab.page.fill("#login-form input[name=password]", "not the password")
    await tab.page.click("#login-form button[type=submit]")
    await tab.wait_text("#login-error", "wrong email or password")
    assert await tab.page.is_hidden("#view-trade")


async def test_ticker_change_flashes_and_old_quotes_are_marked_stale(
        console: Any, make_account: Any, publisher: Any) -> None:
    """Every streamed exchange and symbol is listed (the exchange picker offers each);
    a published ticker change reaches the row with an up-flash; a quote older than the
    configured stale time is marked stale while a fresh one is not."""
    now_ms = int(time.time() * 1000)
    await publisher.ticker("kraken", "BTC/USD", {"price": 65000.1, "bid": 64999.0,
                                                 "ask": 65001.0, "time": now_ms})
    await publisher.ticker("binance", "ETH/USDT", {"price": 3400.0, "bid": 3399.5,
                                                   "ask": 3400.5, "time": now_ms})
    user = await make_account()
    tab = await console()
    await tab.login(user.email, PASSWORD)
    row = '#market-table tr[data-exchange=kraken][data-symbol="BTC/USD"]'
    await tab.wait_text(row + " td.last", "65,000.10")
    options = await tab.page.eval_on_selector_all("#market-exchange option",
                                                  "os => os.map(o => o.value)")
    assert options == ["", "binance", "kraken"]

    # Record every class the cell gets, so a flash that already faded still counts.
    await tab.page.eval_on_selector(row + " td.last", """cell => {
        window.__classes = [];
        new MutationObserver(() => window.__classes.push(cell.className))
            .observe(cell, {attributes: true, attributeFilter: ["class"]});
    }""")
    await publisher.ticker("kraken", "BTC/USD", {"price": 65123.45, "bid": 65122.0,
                                                 "ask": 65124.0, "time": int(time.time() * 1000)})
    await tab.wait_text(row + " td.last", "65,123.45")
    await tab.page.wait_for_function("window.__classes.some(c => c.includes('flash-up'))")
    assert await tab.text(row + " td.bid") == "65,122.00"

    # Stale after 30 s; a quote 60 s old is stale, the fresh one is not.
    await tab.page.fill("#stale-after", "30")
    await tab.page.dispatch_event("#stale-after", "change")
    await publisher.ticker("binance", "ETH/USDT", {"price": 3401.0, "bid": 3400.0,
                                                   "ask": 3402.0, "time": time.time() - 60})
    eth = '#market-table tr[data-exchange=binance][data-symbol="ETH/USDT"]'
    await tab.wait_text(eth + " td.last", "3,401.00")
    await tab.page.wait_for_selector(eth + ".stale")
    assert "stale" not in (await tab.page.get_attribute(row, "class") or "")
    age = await tab.text(eth + " td.age")
    assert age.endswith("s") and int(age[:-1]) >= 60, age

    # The picker narrows the list to one exchange.
    await tab.page.select_option("#market-exchange", "binance")
    assert await tab.page.is_hidden(row)
    assert await tab.page.is_visible(eth)


async def test_stream_data_is_escaped(console: Any, make_account: Any, publisher: Any) -> None:
    """Markup inside streamed data is shown as text, never parsed as HTML."""
    evil = '<img src=x onerror="window.__pwned=1">'
    await publisher.ticker("kraken", evil, {"price": 1.5, "time": time.time()})
    user = await make_account()
    tab = await console()
    await tab.login(user.email, PASSWORD)
    await tab.wait_text("#market-table tbody", evil)
    assert await tab.page.query_selector("#market-table img") is None
    assert await tab.page.evaluate("window.__pwned") is None


async def test_logout_revokes_the_session(console: Any, client: Any, make_account: Any) -> None:
    """Log out returns to the login form and the session's refresh token stops working."""
    user = await make_account()
    tab = await console()
    await tab.login(user.email, PASSWORD)
    stored = await tab.page.evaluate("JSON.parse(sessionStorage.getItem('fullon_session'))")
    await tab.page.click("#logout")
    await tab.page.wait_for_selector("body[data-ready=login]")
    assert await tab.page.is_visible("#login-form")
    assert await tab.page.evaluate("sessionStorage.getItem('fullon_session')") is None
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": stored["refresh"]})
    assert resp.status == 401


async def test_phone_layout_stacks_panels_without_sideways_scroll(
        console: Any, make_account: Any, publisher: Any) -> None:
    """At phone width the panels stack in one column and the page does not scroll
    sideways (wide tables scroll inside their panel)."""
    await publisher.ticker("kraken", "BTC/USD", {"price": 65000.1, "time": time.time()})
    user = await make_account()
    tab = await console(viewport={"width": 390, "height": 844})
    await tab.login(user.email, PASSWORD)
    boxes = {}
    for sel in ("#markets", "#chart-panel", "#orders-panel", "#fills-panel"):
        boxes[sel] = await tab.page.eval_on_selector(
            sel, "n => { const r = n.getBoundingClientRect();"
                 " return [r.left, r.top, r.bottom, r.width]; }")
    tops = [boxes[s][1] for s in ("#markets", "#chart-panel", "#orders-panel", "#fills-panel")]
    assert tops == sorted(tops), boxes
    assert all(b[3] <= 390 for b in boxes.values()), boxes
    assert boxes["#chart-panel"][1] >= boxes["#markets"][2]
    assert await tab.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
