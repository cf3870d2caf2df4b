"""The console's own JavaScript pieces, run in the browser against the gateway's
Python rules: the chart's UTC buckets equal the SQL/Python ones for all 15
timeframes; the /metrics parser reads the gateway's real Prometheus text; an API
failure is shown to the trader, not swallowed; a reload keeps the login."""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

from fullon_gateway.ohlcv.timeframes import TIMEFRAMES
from tests.conftest import PASSWORD


async def test_chart_buckets_match_the_gateway_for_every_timeframe(console: Any) -> None:
    """bucketStart/nextBucket in timeframes.js give the same bucket edges as
    Timeframe.floor/shift for random times from 1971 to 2090, in every timeframe."""
    rng = random.Random(13)
    times = [rng.randrange(31_536_000_000, 3_786_000_000_000) for _ in range(200)]
    times += [951_782_400_000, 1_709_251_199_999, 1_704_067_200_000]  # leap day, month edges
    tab = await console()
    await tab.open()
    js = await tab.page.evaluate("""async ([times, tfs]) => {
        const m = await import("/static/js/timeframes.js");
        const out = {};
        for (const tf of tfs) out[tf] = times.map(t => {
            const b = m.bucketStart(t, tf); return [b, m.nextBucket(b, tf)]; });
        return out;
    }""", [times, list(TIMEFRAMES)])
    for name, tf in TIMEFRAMES.items():
        for t, (start, nxt) in zip(times, js[name], strict=True):
            floor = tf.floor(dt.datetime.fromtimestamp(t / 1000, dt.UTC))
            assert start == int(floor.timestamp() * 1000), (name, t)
            assert nxt == int(tf.shift(floor, 1).timestamp() * 1000), (name, t)


async def test_metrics_parser_reads_the_gateway_metrics(console: Any, client: Any) -> None:
    """parseMetrics sums a labelled family and finds a histogram quantile in the text
    the gateway's /metrics really serves."""
    await client.get("/health/live")
    text = await (await client.get("/metrics")).text()
    tab = await console()
    await tab.open()
    got = await tab.page.evaluate("""async (text) => {
        const m = (await import("/static/js/operators.js")).parseMetrics(text);
        return [m.sum("gateway_http_requests_total"),
                m.quantile("gateway_http_request_seconds", 0.5), m.sum("no_such_metric")];
    }""", text)
    total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("gateway_http_requests_total{"))
    assert got[0] == total and total >= 1
    assert got[1] is not None and got[1] > 0
    assert got[2] == 0


async def test_a_failing_api_call_is_shown(console: Any, make_account: Any) -> None:
    """When the markets list answers 503, the console says so under the top bar (the
    browser answers for the gateway: Redis itself stays up for the other tests)."""
    user = await make_account()
    tab = await console()
    await tab.page.route("**/api/v1/markets", lambda route: route.fulfill(
        status=503, content_type="application/json",
        body='{"detail": "redis is unreachable", "code": "dependency_unavailable"}'))
    await tab.login(user.email, PASSWORD)
    await tab.wait_text("#errors", "Could not list the markets: redis is unreachable")


async def test_reload_keeps_the_login(console: Any, make_account: Any, publisher: Any) -> None:
    """A reload of the tab comes back to the console, logged in, without the form."""
    await publisher.ticker("kraken", "BTC/USD", {"price": 1.25, "time": time.time()})
    user = await make_account()
    tab = await console()
    await tab.login(user.email, PASSWORD)
    await tab.page.reload()
    await tab.page.wait_for_selector("body[data-ready=true]")
    assert await tab.page.is_hidden("#login-view")
    await tab.wait_text("#who", user.email)
    await tab.wait_text('#market-table tr[data-symbol="BTC/USD"] td.last', "1.25")
