"""The candle chart in a real browser: bars from the REST history, the forming bar
kept live from the ohlcv stream (also folded into longer timeframes without counting a
minute twice), all 15 timeframes offered, and 1,000+ bars loaded and drawn."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fullon_gateway.keys import DB
from fullon_gateway.ohlcv.loader import TradeIn, load_trades
from fullon_gateway.ohlcv.timeframes import VALID_TIMEFRAMES
from tests.conftest import PASSWORD

# The share of plot columns holding a pixel of the candle colours (chart.js COLORS.up
# #26a69a, COLORS.down #ef5350, blended with the dark background at the edges).
COLUMNS_WITH_CANDLES = """canvas => {
  const ctx = canvas.getContext("2d");
  const {width, height} = canvas;
  const data = ctx.getImageData(0, 0, width, height).data;
  const plot = width - Math.round(76 * (window.devicePixelRatio || 1));
  let columns = 0;
  for (let x = 0; x < plot; x++) {
    for (let y = 0; y < height; y++) {
      const i = (y * width + x) * 4;
      const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
      if ((g > 120 && g > r + 70 && b > 100) || (r > 170 && r > g + 90)) { columns++; break; }
    }
  }
  return columns / plot;
}"""


def _minute(ms: int) -> int:
    return ms - ms % 60_000


async def _history(client: Any, minutes: int, end_minute: int, partial: float | None) -> list[Any]:
    """One trade a minute for ``minutes`` minutes before ``end_minute`` (and a partial
    trade inside it when given), loaded straight into the store."""
    trades = []
    for i in range(minutes, 0, -1):
        ts = end_minute - i * 60_000
        trades.append(TradeIn(f"t{ts}", dt.datetime.fromtimestamp(ts / 1000, dt.UTC),
                              65000.0 + (i % 7) * 10 - i * 0.5, 1.0, "buy"))
    if partial is not None:
        at = dt.datetime.fromtimestamp((end_minute + 1000) / 1000, dt.UTC)
        trades.append(TradeIn("partial", at, 65010.0, partial, "sell"))
    await load_trades(client.app[DB], "kraken", "BTC/USD", trades)
    return trades


async def _open_chart(console: Any, make_account: Any, publisher: Any) -> Any:
    await publisher.ticker("kraken", "BTC/USD", {"price": 65000.0, "time": time.time()})
    user = await make_account()
    tab = await console()
    await tab.login(user.email, PASSWORD)
    await tab.wait_text("#chart-title", "BTC/USD")
    return tab


async def test_chart_draws_rest_bars_and_extends_with_the_live_bar(
        console: Any, client: Any, make_account: Any, publisher: Any) -> None:
    """The chart draws the stored 1m bars, then the live bar of the forming minute
    replaces REST's partial one; at 1h the live minute is folded into the hour without
    its partial REST part counted twice."""
    now_minute = _minute(int(time.time() * 1000))
    trades = await _history(client, 30, now_minute, partial=0.5)
    tab = await _open_chart(console, make_account, publisher)
    buttons = await tab.page.eval_on_selector_all("#timeframes button",
                                                  "bs => bs.map(b => b.dataset.tf)")
    assert buttons == list(VALID_TIMEFRAMES)

    canvas = "#chart"
    await tab.page.wait_for_selector(canvas + '[data-bars="31"]')
    assert await tab.page.eval_on_selector(canvas, COLUMNS_WITH_CANDLES) > 0

    # The live minute: complete (2.0 volume, including REST's partial 0.5).
    live = {"timestamp": now_minute, "open": 65010.0, "high": 65600.0, "low": 65000.0,
            "close": 65500.0, "vol": 2.0}
    await publisher.ohlcv("kraken", "BTC/USD", "1m", live)
    await tab.page.wait_for_selector(canvas + '[data-last-close="65500"]')
    assert await tab.page.get_attribute(canvas, "data-bars") == "31"
    assert "V 2" in await tab.text("#chart-readout")
    # A new minute extends the chart by one bar.
    nxt = {**live, "timestamp": now_minute + 60_000, "open": 65500.0, "close": 65550.0, "vol": 0.25}
    await publisher.ohlcv("kraken", "BTC/USD", "1m", nxt)
    await tab.page.wait_for_selector(canvas + '[data-bars="32"]')
    assert await tab.page.get_attribute(canvas, "data-last-close") == "65550"

    # 1h: the hour of the live minutes = REST's hour - partial 0.5 + 2.0 + 0.25.
    await tab.page.click('#timeframes button[data-tf="1h"]')
    hours = sorted({_minute(int(t.ts.timestamp() * 1000)) // 3_600_000 for t in trades}
                   | {(now_minute + 60_000) // 3_600_000})
    await tab.page.wait_for_selector(canvas + f'[data-bars="{len(hours)}"]')
    await tab.page.wait_for_selector(canvas + '[data-last-close="65550"]')
    last_hour = hours[-1]
    stored = sum(t.volume for t in trades if t.trade_id != "partial"
                 and int(t.ts.timestamp() * 1000) // 3_600_000 == last_hour)
    expected = stored + 2.0 * (now_minute // 3_600_000 == last_hour) + 0.25
    readout = await tab.text("#chart-readout")
    shown = float(readout.split(" V ")[1].split()[0].replace(",", ""))
    assert abs(shown - expected) < 1e-6, (readout, expected)


async def test_chart_loads_and_draws_more_than_a_thousand_bars(
        console: Any, client: Any, make_account: Any, publisher: Any) -> None:
    """1,500 stored minutes: the chart reads the newest 1,000, reads the older page when
    the trader pans to the start, and zoomed out draws candles across the whole plot."""
    now_minute = _minute(int(time.time() * 1000))
    await _history(client, 1500, now_minute, partial=None)
    tab = await _open_chart(console, make_account, publisher)
    canvas = "#chart"
    await tab.page.wait_for_selector(canvas + '[data-bars="1000"]')
    await tab.page.focus(canvas)
    for _ in range(30):  # zoom all the way out, then go to the oldest bar
        await tab.page.keyboard.press("-")
    await tab.page.keyboard.press("Home")
    await tab.page.wait_for_selector(canvas + '[data-bars="1500"]')
    for _ in range(10):
        await tab.page.keyboard.press("-")
    await tab.page.keyboard.press("End")
    await tab.page.wait_for_function(
        "c => Number(c.dataset.visible) === 1500", arg=await tab.page.query_selector(canvas))
    assert await tab.page.eval_on_selector(canvas, COLUMNS_WITH_CANDLES) > 0.7
