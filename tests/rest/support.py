"""Helpers for the /api/v1/orm tests: call the API and assert the status in one line,
and seed the catalog (exchanges, symbols, strategies) through the admin API."""

from __future__ import annotations

from typing import Any

ORM = "/api/v1/orm"


def hdr(who: Any) -> dict[str, str]:
    """Headers for an Account (JWT) or a raw API key string."""
    if isinstance(who, str):
        return {"X-API-Key": who}
    return who.headers


async def call(
    client: Any,
    method: str,
    path: str,
    who: Any,
    status: int = 200,
    json: Any = None,
    params: Any = None,
) -> Any:
    resp = await client.request(method, ORM + path, headers=hdr(who), json=json, params=params)
    text = await resp.text()
    assert resp.status == status, f"{method} {path}: {resp.status} {text}"
    if resp.status == 204 or not text:
        return None
    body = await resp.json()
    if resp.status >= 400:
        assert set(body) >= {"detail", "code"}, body
    return body


async def api_key(client: Any, account: Any, scopes: list[str]) -> str:
    body = await call(
        client,
        "POST",
        "/api_keys/me",
        account,
        201,
        json={"name": "k-" + "-".join(scopes), "scopes": scopes},
    )
    return str(body["key"])


async def seed_catalog(client: Any, admin: Any) -> dict[str, Any]:
    """Two catalog exchanges, three symbols, one strategy with parameter definitions."""
    kraken = await call(client, "POST", "/exchanges/catalog", admin, 201, json={"name": "kraken"})
    bitmex = await call(client, "POST", "/exchanges/catalog", admin, 201, json={"name": "bitmex"})
    btc = await call(
        client,
        "POST",
        "/symbols",
        admin,
        201,
        json={"cat_ex_id": kraken["cat_ex_id"], "symbol": "BTC/USD", "base": "BTC", "quote": "USD"},
    )
    eth = await call(
        client,
        "POST",
        "/symbols",
        admin,
        201,
        json={"cat_ex_id": kraken["cat_ex_id"], "symbol": "ETH/USD", "base": "ETH", "quote": "USD"},
    )
    xbt = await call(
        client,
        "POST",
        "/symbols",
        admin,
        201,
        json={
            "cat_ex_id": bitmex["cat_ex_id"],
            "symbol": "BTC/USD:BTC",
            "base": "BTC",
            "quote": "USD",
            "futures": True,
        },
    )
    strategy = await call(
        client,
        "POST",
        "/strategies/catalog",
        admin,
        201,
        json={
            "name": "trend",
            "description": "trend follower",
            "params": {
                "fast": {"type": "int", "default": 10, "min": 1, "max": 500},
                "slow": {"type": "int", "default": 50, "min": 2},
                "stop": {"type": "float", "default": 0.02},
            },
        },
    )
    return {
        "kraken": kraken,
        "bitmex": bitmex,
        "btc": btc,
        "eth": eth,
        "xbt": xbt,
        "strategy": strategy,
    }


async def make_exchange(client: Any, who: Any, cat_ex_id: int, name: str = "main") -> Any:
    return await call(
        client,
        "POST",
        "/exchanges/user-exchanges",
        who,
        201,
        json={"cat_ex_id": cat_ex_id, "name": name},
    )


async def make_bot(
    client: Any, who: Any, name: str = "bot", ex_ids: list[int] | None = None
) -> Any:
    return await call(
        client, "POST", "/bots", who, 201, json={"name": name, "ex_ids": ex_ids or []}
    )


async def make_order(
    client: Any,
    who: Any,
    ex_id: int,
    bot_id: int | None = None,
    symbol: str = "BTC/USD",
    **extra: Any,
) -> Any:
    body = {
        "ex_id": ex_id,
        "bot_id": bot_id,
        "symbol": symbol,
        "side": "buy",
        "order_type": "limit",
        "volume": 1,
        "price": 100,
        **extra,
    }
    return await call(client, "POST", "/orders", who, 201, json=body)
