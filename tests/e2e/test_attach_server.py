"""`FULLON_DATABASE_URL=<a fullon database> python -m fullon_gateway` serves fullon's own
users, bots and orders over REST and streams (the real server, as an operator runs it)."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis

from fullon_gateway.store.pool import _with_database
from fullon_gateway.stream.publish import Publisher
from tests import fullon_shape
from tests.e2e.conftest import base_env, start_server, stop_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def fullon_db(servers):
    """A fresh fullon-shaped database (install-script shape) with fullon's rows for two
    users; dropped afterwards."""
    name = f"fgw_e2e_fullon_{uuid.uuid4().hex[:10]}"
    admin_url = _with_database(servers[0], "postgres")
    url = _with_database(servers[0], name)

    async def build():
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        conn = await asyncpg.connect(url)
        await fullon_shape.build(conn, "base")
        seeded = await fullon_shape.seed_two_users(conn, "base")
        await conn.close()
        return seeded

    seeded = asyncio.run(build())
    yield url, seeded

    async def drop():
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    asyncio.run(drop())


def test_the_server_serves_a_fullon_database_in_place(tmp_path, servers, fullon_db):
    """The server attaches (and says so), fullon's user logs in with her bcrypt password,
    sees her bot and order under fullon's ids, and receives live order data published
    for her fullon ex_id; the server stops cleanly."""
    url, seeded = fullon_db
    alice = seeded["users"]["alice"]
    prefix = f"e2eattach{uuid.uuid4().hex[:6]}:"
    env = base_env()
    env.update({"FULLON_DATABASE_URL": url, "FULLON_REDIS_URL": servers[1],
                "FULLON_REDIS_PREFIX": prefix, "FULLON_JWT_SECRET": "e2e-secret-" + "z" * 40})
    srv = start_server(tmp_path, env)
    try:
        async def scenario():
            async with aiohttp.ClientSession(srv.url) as s:
                async with s.post("/api/v1/auth/login",
                                  json={"email": alice.mail, "password": alice.password}) as r:
                    assert r.status == 200, await r.text()
                    token = (await r.json())["access_token"]
                auth = {"Authorization": f"Bearer {token}"}
                async with s.get("/api/v1/orm/bots", headers=auth) as r:
                    assert [b["bot_id"] for b in (await r.json())["items"]] == [alice.bot_id]
                async with s.get("/api/v1/orm/orders", headers=auth) as r:
                    orders = (await r.json())["items"]
                    assert [o["ex_id"] for o in orders] == [alice.ex_id]
                async with s.ws_connect("/api/v1/cache/ws", params={"token": token}) as ws:
                    await ws.send_json({"action": "subscribe", "request_id": "o",
                                        "params": {"stream": "orders", "ex_id": alice.ex_id}})
                    ack = await ws.receive_json(timeout=10)
                    assert ack["success"] is True, ack
                    snap = await ws.receive_json(timeout=10)
                    assert snap.get("snapshot") is True
                    client = aioredis.Redis.from_url(servers[1])
                    await Publisher(client, prefix, 100).order(alice.ex_id, {"order_id": "live"})
                    await client.aclose()
                    frame = await ws.receive_json(timeout=10)
                    assert frame["result"]["ex_id"] == alice.ex_id, json.dumps(frame)

        asyncio.run(scenario())
        assert "attach mode: serving fullon's tables in place" in srv.log.read_text()
    finally:
        assert stop_server(srv) == 0
