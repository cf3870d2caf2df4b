"""The /api/v1/ohlcv HTTP contract: ingestion, auth scopes, symbols in paths, ranges,
limits and errors (docs/contract.md section 6)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from yarl import URL

from fullon_gateway.keys import OHLCV_LOADER
from fullon_gateway.ohlcv.loader import TradeIn
from fullon_gateway.ohlcv.timeframes import VALID_TIMEFRAMES

UTC = dt.UTC
BASE = "/api/v1/ohlcv"
T0 = dt.datetime(2024, 3, 4, tzinfo=UTC)  # a Monday


def minute_trades(n: int, start: dt.datetime = T0, step: int = 60) -> list[TradeIn]:
    """One trade every `step` seconds, priced 1, 2, 3, ... so candles are easy to check."""
    return [TradeIn(f"t{i}", start + dt.timedelta(seconds=i * step), float(i + 1), 1.0, "buy")
            for i in range(n)]


def wire(trades: list[TradeIn]) -> list[dict[str, Any]]:
    return [{"trade_id": t.trade_id, "timestamp": t.ts.isoformat().replace("+00:00", "Z"),
             "price": t.price, "volume": t.volume, "side": t.side} for t in trades]


async def api_key(client: Any, account: Any, scopes: list[str]) -> str:
    resp = await client.post("/api/v1/orm/api_keys/me", json={"name": "k", "scopes": scopes},
                             headers=account.headers)
    body = await resp.json()
    assert resp.status == 201, body
    return str(body["key"])


async def get(client: Any, path: str, headers: dict[str, str], **params: str) -> Any:
    resp = await client.get(URL(path, encoded=True), params=params or None, headers=headers)
    return resp.status, await resp.json()


async def test_ingest_is_idempotent_on_trade_id(client, make_account):
    """POSTing the same batch twice stores it once: the second answer counts every row
    as a duplicate, and the candles do not change."""
    admin = await make_account(role="admin")
    batch = {"trades": wire(minute_trades(5))}
    path = f"{BASE}/trades/kraken/BTC/USD"
    resp = await client.post(path, json=batch, headers=admin.headers)
    assert resp.status == 200 and await resp.json() == {"inserted": 5, "duplicates": 0}
    resp = await client.post(path, json=batch, headers=admin.headers)
    assert await resp.json() == {"inserted": 0, "duplicates": 5}
    status, body = await get(client, f"{BASE}/candles/kraken/BTC/USD/1h", admin.headers)
    assert status == 200
    assert body["candles"] == [{"timestamp": "2024-03-04T00:00:00Z", "open": 1.0, "high": 5.0,
                                "low": 1.0, "close": 5.0, "vol": 5.0}]


async def test_bad_row_rejects_whole_batch(client, make_account):
    """One invalid row gets a 422 naming the row and the field, and nothing of the batch
    is stored (the symbol stays unknown)."""
    admin = await make_account(role="admin")
    rows = wire(minute_trades(3))
    for bad, where in (({"price": -1}, "trades[1].price"),
                       ({"timestamp": "2024-03-04T00:00:00"}, "trades[1].timestamp"),
                       ({"side": "long"}, "trades[1].side"),
                       ({"trade_id": None}, "trades[1].trade_id"),
                       ({"volume": "lots"}, "trades[1].volume"),
                       ({"timestamp": "1969-12-31T23:59:59Z"}, "trades[1].timestamp"),
                       ({"price": "NaN"}, "trades[1].price"),
                       ({"colour": "red"}, "trades[1].colour")):
        body_rows = [rows[0], {**rows[1], **bad}, rows[2]]
        resp = await client.post(f"{BASE}/trades/kraken/BTC/USD", json={"trades": body_rows},
                                 headers=admin.headers)
        body = await resp.json()
        assert resp.status == 422, body
        assert body["code"] == "invalid_trade" and list(body["fields"]) == [where], body
        assert "row 1" in body["detail"]
    status, body = await get(client, f"{BASE}/trades/kraken/BTC/USD", admin.headers)
    assert status == 404
    for payload in ({"trades": []}, {"rows": []}, [1, 2]):
        resp = await client.post(f"{BASE}/trades/kraken/BTC/USD", json=payload,
                                 headers=admin.headers)
        assert resp.status in (400, 422), await resp.text()


async def test_ingest_needs_admin_or_ingest_key(client, make_account):
    """A plain user cannot ingest (403), nor can an admin's read-only key (403); an
    admin's ingest key can, through X-API-Key; nobody anonymous (401)."""
    user = await make_account()
    admin = await make_account(role="admin")
    path = f"{BASE}/trades/kraken/BTC/USD"
    batch = {"trades": wire(minute_trades(2))}
    resp = await client.post(path, json=batch, headers=user.headers)
    assert resp.status == 403
    read_key = await api_key(client, admin, ["read"])
    resp = await client.post(path, json=batch, headers={"X-API-Key": read_key})
    assert resp.status == 403 and (await resp.json())["code"] == "insufficient_scope"
    resp = await client.post(path, json=batch)
    assert resp.status == 401
    ingest_key = await api_key(client, admin, ["ingest"])
    resp = await client.post(path, json=batch, headers={"X-API-Key": ingest_key})
    assert resp.status == 200 and (await resp.json())["inserted"] == 2
    resp = await client.get(f"{BASE}/candles/kraken/BTC/USD/1m")
    assert resp.status == 401


async def test_symbols_raw_and_percent_encoded(client, make_account):
    """A symbol with '/' and ':' works raw and percent-encoded in every route, for
    ingestion and reads, and the catalog lists exactly what is stored."""
    admin = await make_account(role="admin")
    symbol = "BTC/USD:BTC"
    encoded = quote(symbol, safe="")
    resp = await client.post(URL(f"{BASE}/trades/Kraken/{encoded}", encoded=True),
                             json={"trades": wire(minute_trades(3))}, headers=admin.headers)
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"{BASE}/trades/kraken/{symbol}",
                             json={"trades": wire(minute_trades(4))}, headers=admin.headers)
    assert await resp.json() == {"inserted": 1, "duplicates": 3}
    for name in (symbol, encoded):
        status, body = await get(client, f"{BASE}/candles/kraken/{name}/5m", admin.headers)
        assert status == 200 and body["symbol"] == symbol and body["count"] == 1
        assert body["candles"][0]["vol"] == 4.0
        status, body = await get(client, f"{BASE}/timeseries/kraken/{name}/ohlcv",
                                 admin.headers, timeframe="1m")
        assert status == 200 and body["count"] == 4 and body["symbol"] == symbol
        status, body = await get(client, f"{BASE}/trades/kraken/{name}", admin.headers)
        assert status == 200 and [t["price"] for t in body["trades"]] == [1.0, 2.0, 3.0, 4.0]
    await client.app[OHLCV_LOADER].load("binance", "ETH/USDT", minute_trades(1))
    status, body = await get(client, f"{BASE}/exchanges", admin.headers)
    assert (status, body["exchanges"]) == (200, ["binance", "kraken"])
    status, body = await get(client, f"{BASE}/exchanges/kraken/symbols", admin.headers)
    assert (status, body["symbols"], body["count"]) == (200, [symbol], 1)
    status, body = await get(client, f"{BASE}/exchanges/nope/symbols", admin.headers)
    assert (status, body["code"]) == (404, "exchange_not_found")


async def test_unknown_names_and_timeframes(client, make_account):
    """Unknown exchange or symbol: 404 with a code saying which; unknown timeframe: 422
    listing all 15 valid ones; invalid names on ingest: 422."""
    user = await make_account()
    admin = await make_account(role="admin")
    await client.app[OHLCV_LOADER].load("kraken", "BTC/USD", minute_trades(2))
    status, body = await get(client, f"{BASE}/candles/nowhere/BTC/USD/1h", user.headers)
    assert (status, body["code"]) == (404, "exchange_not_found")
    status, body = await get(client, f"{BASE}/candles/kraken/DOGE/USD/1h", user.headers)
    assert (status, body["code"]) == (404, "symbol_not_found")
    status, body = await get(client, f"{BASE}/trades/kraken/DOGE/USD", user.headers)
    assert status == 404
    status, body = await get(client, f"{BASE}/timeseries/kraken/DOGE/USD/ohlcv", user.headers)
    assert status == 404
    status, body = await get(client, f"{BASE}/candles/kraken/BTC/USD/2m", user.headers)
    assert status == 422 and body["code"] == "invalid_timeframe"
    assert all(tf in body["detail"] for tf in VALID_TIMEFRAMES)
    status, body = await get(client, f"{BASE}/timeseries/kraken/BTC/USD/ohlcv", user.headers,
                             timeframe="1y")
    assert status == 422 and "timeframe" in body["fields"]
    assert all(tf in body["fields"]["timeframe"][0] for tf in VALID_TIMEFRAMES)
    resp = await client.post(URL(f"{BASE}/trades/bad%20name/BTC", encoded=True),
                             json={"trades": wire(minute_trades(1))}, headers=admin.headers)
    assert resp.status == 422 and "exchange" in (await resp.json())["fields"]


async def test_time_parameters(client, make_account):
    """start_time/end_time take ISO 8601 with Z or an offset, or epoch ms; a naive time,
    garbage, start after end, or a limit outside 1..1000 is a 422 naming the field;
    unknown query parameters are ignored."""
    user = await make_account()
    await client.app[OHLCV_LOADER].load("kraken", "BTC/USD", minute_trades(10))
    path = f"{BASE}/candles/kraken/BTC/USD/1m"
    for value in ("2024-03-04T00:03:00Z", "2024-03-04T01:03:00+01:00",
                  str(int(T0.timestamp() * 1000) + 180_000)):
        status, body = await get(client, path, user.headers, start_time=value, _ignored="1")
        assert status == 200, body
        assert body["candles"][0]["timestamp"] == "2024-03-04T00:03:00Z" and body["count"] == 7
    for params, field in (({"start_time": "2024-03-04T00:03:00"}, "start_time"),
                          ({"end_time": "yesterday"}, "end_time"),
                          ({"start_time": "2024-03-05T00:00:00Z",
                            "end_time": "2024-03-04T00:00:00Z"}, "start_time"),
                          ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"),
                          ({"limit": "many"}, "limit")):
        status, body = await get(client, path, user.headers, **params)
        assert status == 422 and field in body["fields"], (params, body)
    status, body = await get(client, f"{BASE}/trades/kraken/BTC/USD", user.headers,
                             end_time="2024-03-04T00:00:00")
    assert status == 422 and "end_time" in body["fields"]


async def test_limit_and_range_semantics(client, make_account):
    """Only limit: the newest `limit` candles, oldest first. Only start_time: the first
    `limit` from it. Both ends: the newest `limit` inside, both ends inclusive on the
    candle's opening time, and a candle is always its whole bucket. Empty range: []."""
    user = await make_account()
    await client.app[OHLCV_LOADER].load("kraken", "BTC/USD", minute_trades(240))  # 4 hours
    path = f"{BASE}/candles/kraken/BTC/USD"

    def stamps(body: Any) -> list[str]:
        return [c["timestamp"][11:16] for c in body["candles"]]

    status, body = await get(client, f"{path}/1m", user.headers, limit="3")
    assert stamps(body) == ["03:57", "03:58", "03:59"]
    status, body = await get(client, f"{path}/15m", user.headers, limit="2",
                             start_time="2024-03-04T00:10:00Z")  # unaligned: next bucket on
    assert stamps(body) == ["00:15", "00:30"]
    status, body = await get(client, f"{path}/1h", user.headers,
                             start_time="2024-03-04T01:00:00Z", end_time="2024-03-04T02:30:00Z")
    assert stamps(body) == ["01:00", "02:00"]
    assert body["candles"][1]["open"] == 121.0 and body["candles"][1]["close"] == 180.0
    status, body = await get(client, f"{path}/1h", user.headers, limit="2",
                             start_time="2024-03-04T00:00:00Z", end_time="2024-03-04T03:00:00Z")
    assert stamps(body) == ["02:00", "03:00"]
    status, body = await get(client, f"{path}/1h", user.headers,
                             start_time="2024-03-05T00:00:00Z")
    assert (status, body["candles"], body["count"]) == (200, [], 0)
    status, body = await get(client, f"{path}/4h", user.headers)
    assert body["candles"] == [{"timestamp": "2024-03-04T00:00:00Z", "open": 1.0,
                                "high": 240.0, "low": 1.0, "close": 240.0, "vol": 240.0}]


async def test_sparse_history_still_returns_limit_candles(client, make_account):
    """With gaps wider than `limit` buckets between trades, asking for the last N
    candles still returns N (the read window widens past the gaps)."""
    user = await make_account()
    days = [T0 + dt.timedelta(days=30 * k) for k in range(8)]
    await client.app[OHLCV_LOADER].load(
        "kraken", "BTC/USD", [TradeIn(f"s{i}", d, 10.0 + i, 1.0, "sell")
                              for i, d in enumerate(days)])
    status, body = await get(client, f"{BASE}/candles/kraken/BTC/USD/1h", user.headers,
                             limit="6")
    assert [c["open"] for c in body["candles"]] == [12.0, 13.0, 14.0, 15.0, 16.0, 17.0]
    status, body = await get(client, f"{BASE}/candles/kraken/BTC/USD/1d", user.headers,
                             limit="5", start_time="2024-01-01T00:00:00Z")
    assert status == 200
    assert [c["open"] for c in body["candles"]] == [10.0, 11.0, 12.0, 13.0, 14.0]


async def test_trades_read(client, make_account):
    """Trades come oldest first with timestamp, price, volume, side and type, filtered
    by an inclusive time range; only a limit gives the newest ones."""
    user = await make_account()
    trades = minute_trades(5)
    trades[2] = trades[2]._replace(side="sell", type="limit")
    await client.app[OHLCV_LOADER].load("kraken", "BTC/USD", trades)
    status, body = await get(client, f"{BASE}/trades/kraken/BTC/USD", user.headers,
                             start_time="2024-03-04T00:01:00Z", end_time="2024-03-04T00:03:00Z")
    assert status == 200 and body["count"] == 3
    assert body["trades"][1] == {"timestamp": "2024-03-04T00:02:00Z", "price": 3.0,
                                 "volume": 1.0, "side": "sell", "type": "limit",
                                 "trade_id": "t2"}
    status, body = await get(client, f"{BASE}/trades/kraken/BTC/USD", user.headers, limit="2")
    assert [t["price"] for t in body["trades"]] == [4.0, 5.0]


async def test_fullon_beta_client_shape(client, make_account):
    """fullon's client call works unchanged: /timeseries/{ex}/{symbol}/ohlcv with
    timeframe=1d, start_time/end_time in Z, limit=10, authenticated by X-API-Key."""
    admin = await make_account(role="admin")
    key = await api_key(client, admin, ["read"])
    await client.app[OHLCV_LOADER].load("kraken", "BTC/USD",
                                        minute_trades(20, step=86400 // 2))  # 10 days
    resp = await client.get(
        "/api/v1/ohlcv/timeseries/kraken/BTC/USD/ohlcv?timeframe=1d"
        "&start_time=2024-03-01T00:00:00Z&end_time=2024-03-31T00:00:00Z&limit=10",
        headers={"X-API-Key": key})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["success"] is True and body["timeframe"] == "1d" and body["count"] == 10
    assert body["ohlcv"][0] == {"timestamp": "2024-03-04T00:00:00Z", "open": 1.0, "high": 2.0,
                                "low": 1.0, "close": 2.0, "vol": 2.0}
    assert set(body) >= {"exchange", "symbol", "start_time", "end_time", "ohlcv", "count"}


async def test_extreme_times_are_answered(client, make_account):
    """Times at the edges of the calendar (year 1, year 9999) never crash a read: every
    timeframe answers 200, with the candles that fall inside."""
    user = await make_account()
    await client.app[OHLCV_LOADER].load("kraken", "BTC/USD", minute_trades(3))
    for tf in VALID_TIMEFRAMES:
        for params in ({"start_time": "0001-01-01T00:00:00Z"},
                       {"end_time": "9999-12-31T23:59:59Z"},
                       {"start_time": "9999-12-31T23:59:59Z"},
                       {"start_time": "0001-01-01T00:00:00Z",
                        "end_time": "9999-12-31T23:59:59.999Z"}):
            status, body = await get(client, f"{BASE}/candles/kraken/BTC/USD/{tf}",
                                     user.headers, **params)
            assert status == 200, (tf, params, body)
            expected = 0 if params.get("start_time", "").startswith("9999") else None
            if expected is not None:
                assert body["count"] == 0
            else:
                assert body["count"] >= 1, (tf, params, body)


async def test_http_ingest_feeds_bar_listeners(client, make_account, caplog):
    """Bars changed by an HTTP ingest reach async listeners (the live ohlcv stream's
    hook) in time order; a failing listener is logged and does not fail the request;
    a batch of duplicates notifies nobody."""
    admin = await make_account(role="admin")
    got: list[tuple[str, str, list[str]]] = []

    async def on_bars(exchange: str, symbol: str, bars: list[dict[str, Any]]) -> None:
        got.append((exchange, symbol, [b["timestamp"].isoformat() for b in bars]))

    def broken(exchange: str, symbol: str, bars: list[dict[str, Any]]) -> None:
        raise RuntimeError("listener bug")

    loader = client.app[OHLCV_LOADER]
    loader.add_listener(broken)
    loader.add_listener(on_bars)
    batch = {"trades": wire(list(reversed(minute_trades(3))))}
    resp = await client.post(f"{BASE}/trades/kraken/BTC/USD", json=batch, headers=admin.headers)
    assert resp.status == 200 and (await resp.json())["inserted"] == 3
    assert got == [("kraken", "BTC/USD", ["2024-03-04T00:00:00+00:00", "2024-03-04T00:01:00+00:00",
                                           "2024-03-04T00:02:00+00:00"])]
    assert "listener bug" in caplog.text or "bars listener failed" in caplog.text
    resp = await client.post(f"{BASE}/trades/kraken/BTC/USD", json=batch, headers=admin.headers)
    assert (await resp.json())["duplicates"] == 3 and len(got) == 1
    loader.remove_listener(broken)
