"""OHLCV history: ingest a batch of trades, then read it back as candles.

Steps (each printed; the script exits 1 at the first one that does not hold):
1. authenticate: log in as an admin (--email/--password) or use an ingest key (--api-key);
2. POST a batch of 45 trades spread over three hours into a fresh symbol;
3. POST it again: nothing new is stored (idempotent on trade_id);
4. read 1m, 15m and 1h candles (symbol percent-encoded) and compare each candle with
   the one computed here from the same trades;
5. read the same hours through fullon's /timeseries shape.

    python examples/example_ohlcv.py --url http://127.0.0.1:8000 --email E --password P
    python examples/example_ohlcv.py --api-key fullon_ak_...   (key with scopes ingest,read)
"""

from __future__ import annotations

import argparse
import datetime as dt
import uuid
from collections import defaultdict
from typing import Any
from urllib.parse import quote

import aiohttp
from _client import base_parser, bearer, call, check, login, run

START = dt.datetime(2024, 1, 1, 22, 50, tzinfo=dt.UTC)  # the batch crosses midnight


def make_trades() -> list[dict[str, Any]]:
    """45 trades, one every 4 minutes from 22:50 UTC: buckets of 1m, 15m and 1h all split."""
    trades = []
    price = 42_000.0
    for i in range(45):
        price += (-1) ** i * (i % 7) * 3.5
        ts = START + dt.timedelta(minutes=4 * i, seconds=i % 60)
        trades.append({"trade_id": f"ex-{i}", "timestamp": ts.isoformat().replace("+00:00", "Z"),
                       "price": round(price, 2), "volume": round(0.01 * (i + 1), 4),
                       "side": "buy" if i % 3 else "sell", "type": "limit"})
    return trades


def expected_candles(trades: list[dict[str, Any]], width: int) -> list[dict[str, Any]]:
    """open = first trade, close = last, high/low, vol = sum, per UTC bucket of `width` s."""
    buckets: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t in sorted(trades, key=lambda t: t["timestamp"]):
        ts = dt.datetime.fromisoformat(t["timestamp"].replace("Z", "+00:00"))
        buckets[int(ts.timestamp()) // width * width].append(t)
    out = []
    for start, group in sorted(buckets.items()):
        stamp = dt.datetime.fromtimestamp(start, dt.UTC).isoformat().replace("+00:00", "Z")
        out.append({"timestamp": stamp, "open": group[0]["price"],
                    "high": max(t["price"] for t in group), "low": min(t["price"] for t in group),
                    "close": group[-1]["price"], "vol": sum(t["volume"] for t in group)})
    return out


def same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    if [c["timestamp"] for c in got] != [c["timestamp"] for c in want]:
        return False
    return all(
        (g["open"], g["high"], g["low"], g["close"]) == (w["open"], w["high"], w["low"], w["close"])
        and abs(g["vol"] - w["vol"]) < 1e-9 for g, w in zip(got, want, strict=True))


async def main(args: argparse.Namespace) -> None:
    url = args.url.rstrip("/") + "/api/v1"
    async with aiohttp.ClientSession() as session:
        if args.api_key:
            headers = {"X-API-Key": args.api_key}
            print("ok    using the API key given")
        else:
            tokens = await login(session, args.url.rstrip("/"), args.email, args.password,
                                 what="log in")
            headers = bearer(tokens["access_token"])

        exchange = "example"
        symbol = f"EX{uuid.uuid4().hex[:8].upper()}/USD:EX"  # fresh every run
        path = f"{exchange}/{quote(symbol, safe='')}"
        trades = make_trades()
        status, body = await call(session, "POST", f"{url}/ohlcv/trades/{path}",
                                  json={"trades": trades}, headers=headers)
        check(status == 200 and body == {"inserted": len(trades), "duplicates": 0},
              f"ingest {len(trades)} trades into {symbol}", body)
        status, body = await call(session, "POST", f"{url}/ohlcv/trades/{path}",
                                  json={"trades": trades}, headers=headers)
        check(status == 200 and body == {"inserted": 0, "duplicates": len(trades)},
              "ingest the same batch again: all duplicates", body)

        for tf, width in (("1m", 60), ("15m", 900), ("1h", 3600)):
            status, body = await call(session, "GET", f"{url}/ohlcv/candles/{path}/{tf}",
                                      params={"limit": "1000"}, headers=headers)
            want = expected_candles(trades, width)
            check(status == 200 and body.get("symbol") == symbol
                  and same(body.get("candles", []), want),
                  f"{tf} candles match the trades ({len(want)} candles)", body)

        status, body = await call(
            session, "GET", f"{url}/ohlcv/timeseries/{path}/ohlcv", headers=headers,
            params={"timeframe": "1h", "start_time": "2024-01-01T00:00:00Z",
                    "end_time": "2024-01-02T23:59:59Z", "limit": "10"})
        check(status == 200 and same(body.get("ohlcv", []), expected_candles(trades, 3600)),
              "timeseries (fullon client shape) agrees", body)


def parse() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--api-key", help="an API key with scopes ingest and read "
                        "(instead of logging in)")
    return parser.parse_args()


if __name__ == "__main__":
    run(main, parse())
