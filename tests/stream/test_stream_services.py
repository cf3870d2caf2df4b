"""GET /api/v1/services (admin) from the process registry, and the stream metrics."""

from __future__ import annotations

import json

from tests.stream.support import connect, publisher, recv, subscribe


async def test_services_lists_processes_with_heartbeat_age(client, make_account, redis_client,
                                                           settings):
    """Admins get every registered process with its heartbeat age; one silent for more
    than 5 minutes is stale. Users get 403."""
    admin = await make_account("admin")
    user = await make_account()
    await publisher(client).process("tick", "tick-1", "running", "all good")
    p = settings.redis_prefix
    # A fullon ProcessCache record whose heartbeat is old (its layout: FULLON_CACHE.md 3.7).
    await redis_client.set(p + "process:data:bot-7", json.dumps(
        {"process_type": "bot", "process_id": "bot-7", "component": "bot7", "status": "running",
         "message": "m", "heartbeat": "2020-01-01T00:00:00+00:00"}), ex=86400)
    await redis_client.hset(p + "process:active:bot", "bot-7", "2020-01-01T00:00:00+00:00")
    resp = await client.get("/api/v1/services", headers=admin.headers)
    assert resp.status == 200
    items = {i["process_id"]: i for i in (await resp.json())["items"]}
    assert items["tick-1"]["status"] == "running" and items["tick-1"]["stale"] is False
    assert items["tick-1"]["heartbeat_age_s"] < 60
    assert items["bot-7"]["stale"] is True and items["bot-7"]["status"] == "stale"
    resp = await client.get("/api/v1/services", headers=user.headers)
    assert resp.status == 403


async def test_stream_metrics_are_exported(client, make_account):
    """/metrics reports open sockets, subscriptions per stream, deliveries and the
    publish-to-send latency histogram."""
    acct = await make_account()
    ws = await connect(client, acct.token)
    await subscribe(ws, {"stream": "tickers", "exchange": "kraken"})
    await publisher(client).ticker("kraken", "BTC/USD", {"price": 1})
    await recv(ws)
    text = await (await client.get("/metrics")).text()
    assert "gateway_ws_open_sockets 1.0" in text
    assert 'gateway_ws_subscriptions{stream="tickers"} 1.0' in text
    assert 'gateway_ws_messages_delivered_total{stream="tickers"} 1.0' in text
    assert "gateway_ws_publish_to_send_seconds_count 1.0" in text
    await ws.close()
