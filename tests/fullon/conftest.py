"""Fixtures for the fullon-source tests: a redis-server of their own.

fullon's keys carry no prefix, and the gateway turns keyspace notifications on with
CONFIG SET: neither may touch the machine's shared Redis. Each worker starts its own
redis-server (the binary the embedded path uses) on a free port for the session, and
every test starts from an empty server (FLUSHALL on that server only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from fullon_gateway.app import create_app
from fullon_gateway.embedded import RedisProcess
from fullon_gateway.settings import Settings
from tests.fullon.writer import FullonWriter


@pytest.fixture(scope="session")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A redis-server started for this worker's session (stopped at the end)."""
    proc = RedisProcess(Path(tmp_path_factory.mktemp("fullon-redis")))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def fullon_settings(settings: Settings, own_redis: RedisProcess) -> Iterator[Settings]:
    """Settings on the worker's own Redis, emptied, with no prefix (fullon's key names)
    and keyspace notifications configured by the gateway."""
    client = redis.Redis.from_url(own_redis.url)
    client.flushall()
    client.config_set("notify-keyspace-events", "")  # each test sees the gateway set them
    client.close()
    yield dataclasses.replace(settings, redis_url=own_redis.url, redis_prefix="",
                              keyspace_events="configure")


@pytest.fixture
async def fredis(fullon_settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """A plain client on the own Redis (what a fullon service would hold)."""
    client = aioredis.Redis.from_url(fullon_settings.redis_url or "")
    yield client
    await client.aclose()


@pytest.fixture
def writer(fredis: aioredis.Redis) -> FullonWriter:
    """Writes exactly as fullon_cache does."""
    return FullonWriter(fredis)


@pytest.fixture
async def fclient(aiohttp_client: Any, fullon_settings: Settings) -> Any:
    """The real app on the own Redis, its watcher connected and its first rescan done."""
    from fullon_gateway.keys import WATCHER

    client = await aiohttp_client(create_app(fullon_settings))
    await client.app[WATCHER].ready()
    return client


@pytest.fixture
def faccount(fclient: Any) -> Any:
    """Create a user on the fullon app and log in (like conftest.make_account)."""
    from tests.conftest import PASSWORD, Account, _create_user

    counter = iter(range(1, 10_000))

    async def make(role: str = "user") -> Account:
        email = f"f{role}{next(counter)}@example.com"
        user_id = await _create_user(fclient, email, role, PASSWORD, email.split("@")[0])
        resp = await fclient.post("/api/v1/auth/login",
                                  json={"email": email, "password": PASSWORD})
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        return Account(user_id, email, PASSWORD, body["access_token"], body["refresh_token"])

    return make
