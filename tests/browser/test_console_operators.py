"""The operators panel in a real browser: an admin sees the process registry (live,
with heartbeat age and a stale mark) and the gateway's figures from /metrics; a
non-admin gets no operator panel at all and never asks for its data."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fullon_gateway.keys import REDIS, SETTINGS
from tests.conftest import PASSWORD


async def test_admin_sees_processes_heartbeat_age_and_metrics(
        console: Any, client: Any, make_account: Any, publisher: Any) -> None:
    """A heartbeat published after login shows up live; a process whose last heartbeat
    is 10 minutes old is marked stale; the metrics tiles count the open socket."""
    s = client.app[SETTINGS]
    old = {"process_type": "ohlcv", "process_id": "old-worker", "status": "running",
           "message": "ok", "heartbeat": (dt.datetime.now(dt.UTC)
                                          - dt.timedelta(minutes=10)).isoformat()}
    redis = client.app[REDIS]
    # fullon's ProcessCache registry: the record, and its entry among the active ones.
    await redis.set(s.redis_prefix + "process:data:old-worker", json.dumps(old), ex=86400)
    await redis.hset(s.redis_prefix + "process:active:ohlcv", "old-worker", old["heartbeat"])
    admin = await make_account("admin")
    tab = await console()
    await tab.login(admin.email, PASSWORD)
    await tab.view("ops")
    stale_row = '#process-table tr[data-process="ohlcv:old-worker"]'
    await tab.page.wait_for_selector(stale_row + ".stale")
    assert (await tab.text(stale_row + " td:last-child")).startswith("10m")

    await publisher.process("tick", "ticker-service", "running", "ok")
    live_row = '#process-table tr[data-process="tick:ticker-service"]'
    await tab.wait_text(live_row, "running")
    assert "stale" not in (await tab.page.get_attribute(live_row, "class") or "")
    await tab.wait_text("#process-summary", "1 stale")

    # The figures are re-read every 2 s; the first sample may predate the socket.
    await tab.page.wait_for_function("""() => {
        const tile = [...document.querySelectorAll("#metrics .tile")]
            .find(t => t.children[0].textContent === "Open sockets");
        return tile && Number(tile.children[1].textContent) >= 1;
    }""")
    tiles = await tab.page.eval_on_selector_all(
        "#metrics .tile",
        "ts => ts.map(t => [t.children[0].textContent, t.children[1].textContent])")
    figures = dict(tiles)
    assert {"Deliveries / s", "Conflated", "Slow-consumer closes"} <= set(figures)


async def test_non_admin_sees_no_operator_panel(
        console: Any, make_account: Any) -> None:
    """A trader's page has no Operators tab or panel and requests neither the process
    registry nor /metrics."""
    user = await make_account()
    tab = await console()
    asked: list[str] = []
    tab.page.on("request", lambda r: asked.append(r.url))
    await tab.login(user.email, PASSWORD)
    await tab.view("account")
    assert await tab.page.query_selector("#view-ops") is None
    assert await tab.page.query_selector("#tabs .tab[data-view=ops]") is None
    assert await tab.page.query_selector("#process-table") is None
    await tab.page.goto(tab.base + "#ops")  # asking for the view by address changes nothing
    await tab.page.wait_for_selector("body[data-ready=true]")
    assert await tab.page.query_selector("#view-ops") is None
    assert await tab.page.is_visible("#view-trade")
    assert not [u for u in asked if "/api/v1/services" in u or u.endswith("/metrics")]
