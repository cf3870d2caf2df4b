"""Token refresh in a real browser: with short-lived access tokens the console gets a
new pair before expiry and hands it to its socket, without a reload or a reconnect."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from fullon_gateway.settings import Settings
from tests.conftest import PASSWORD

ACCESS_TTL = 8


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This module's app issues 8-second access tokens."""
    return dataclasses.replace(settings, access_ttl=ACCESS_TTL)


async def test_token_is_refreshed_before_it_expires(
        console: Any, make_account: Any, publisher: Any) -> None:
    """Well past the first token's expiry the same socket still delivers tickers (the
    server closes a socket whose token expired), the stored token is a new one, and
    the page opened exactly one WebSocket."""
    await publisher.ticker("kraken", "BTC/USD", {"price": 100.0, "time": time.time()})
    user = await make_account()
    tab = await console()
    sockets: list[Any] = []
    tab.page.on("websocket", lambda ws: sockets.append(ws.url))
    await tab.login(user.email, PASSWORD)
    first = await tab.page.evaluate("JSON.parse(sessionStorage.getItem('fullon_session'))")
    # Wait on the clock itself: until the first token has been expired for 2 s.
    await tab.page.wait_for_function("t => Date.now() > t + 2000", arg=first["expiresAt"],
                                     timeout=(ACCESS_TTL + 10) * 1000)
    now = await tab.page.evaluate("JSON.parse(sessionStorage.getItem('fullon_session'))")
    assert now["access"] != first["access"] and now["expiresAt"] > first["expiresAt"]
    await publisher.ticker("kraken", "BTC/USD", {"price": 123.25, "time": time.time()})
    await tab.wait_text('#market-table tr[data-symbol="BTC/USD"] td.last', "123.25")
    assert (await tab.text("#conn")).startswith("connected")
    assert len(sockets) == 1
