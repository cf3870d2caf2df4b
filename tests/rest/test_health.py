"""/health, /health/live, /health/ready and /metrics, with dependencies up and really down.

Redis goes down for real: a dedicated redis-server (RedisProcess) is stopped mid-test
and started again on the same port. Postgres is shared by every worker, so it cannot
be stopped; instead the app under test reaches it through a TCP relay in the test,
and the relay is shut (listener closed, every relayed connection aborted): for that
app Postgres is gone exactly as if the server had died, connections refused included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit, urlunsplit

from fullon_gateway import __version__
from fullon_gateway.embedded import RedisProcess
from fullon_gateway.keys import AUTH, HUB
from tests.support import eventually

LOGIN = "/api/v1/auth/login"
CREDS = {"email": "ops@example.com", "password": "ops-password"}


class TcpRelay:
    """Forward 127.0.0.1:<port> to a target; ``stop`` cuts it like a dead server."""

    def __init__(self, connect: Callable[[], Awaitable[tuple[asyncio.StreamReader,
                                                            asyncio.StreamWriter]]]) -> None:
        self._connect = connect
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(task := asyncio.current_task())  # type: ignore[arg-type]
        try:
            up_reader, up_writer = await self._connect()
        except OSError:
            writer.transport.abort()
            self._tasks.discard(task)  # type: ignore[arg-type]
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}
            self._tasks.discard(task)  # type: ignore[arg-type]


def _relay_for(database_url: str) -> tuple[TcpRelay, Callable[[int], str]]:
    """A relay to the test Postgres (TCP or Unix socket) and a URL maker for its port."""
    parts = urlsplit(database_url)
    socket_dir = parse_qs(parts.query).get("host", [""])[0]
    if socket_dir.startswith("/"):
        path = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}"
        relay = TcpRelay(lambda: asyncio.open_unix_connection(path))
    else:
        host, port = parts.hostname or "127.0.0.1", parts.port or 5432
        relay = TcpRelay(lambda: asyncio.open_connection(host, port))
    userinfo = parts.netloc.rpartition("@")[0]

    def url(port: int) -> str:
        netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{port}"
        return urlunsplit(parts._replace(netloc=netloc, query=""))

    return relay, url


def _assert_health_shape(body: dict) -> None:
    assert set(body) == {"status", "version", "uptime_s", "checks"}
    assert body["status"] in {"ok", "degraded"}
    assert body["version"] == __version__
    assert isinstance(body["uptime_s"], (int, float)) and body["uptime_s"] >= 0
    assert {"postgres", "redis", "hub"} <= set(body["checks"]) <= {
        "postgres", "redis", "hub", "fullon", "processes"}
    for name in ("postgres", "redis"):
        check = body["checks"][name]
        assert {"ok", "latency_ms"} <= set(check)
        if check["ok"]:
            assert check["latency_ms"] >= 0
        else:
            assert check["latency_ms"] is None and check["error"]
    assert set(body["checks"]["hub"]) == {"ok", "channels", "connections"}


async def _status(client, path: str) -> int:
    resp = await client.get(path)
    await resp.read()
    return resp.status


async def test_health_ok_shape(client):
    """With both dependencies up /health is 200 "ok" with each check and its latency."""
    resp = await client.get("/health")
    assert resp.status == 200
    body = await resp.json()
    _assert_health_shape(body)
    assert body["status"] == "ok"
    assert body["checks"]["postgres"]["ok"] and body["checks"]["redis"]["ok"]
    hub = body["checks"]["hub"]
    assert hub["ok"] is True and hub["channels"] >= 1 and hub["connections"] == 0


async def test_live_and_ready_when_up(client):
    """/health/live and /health/ready answer 200 when everything is up."""
    live = await client.get("/health/live")
    assert live.status == 200 and await live.json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status == 200
    body = await ready.json()
    assert body["status"] == "ok" and body["checks"]["postgres"]["ok"]


async def test_health_needs_no_credentials(client):
    """Probes are public: no token needed for any health route or /metrics."""
    for path in ("/health", "/health/live", "/health/ready", "/metrics"):
        assert (await client.get(path)).status == 200, path


async def test_stopped_redis_is_503_and_recovers(app_client, make_settings, tmp_path):
    """Redis stopped for real: /health and /health/ready go 503 with the same body shape,
    /health/live stays 200, a login is 503; after Redis restarts on the same port the
    hub reconnects and /health is 200 again."""
    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    try:
        client = await app_client(make_settings(redis_url=redis.url))
        await client.app[AUTH].create_user(CREDS["email"], CREDS["password"])
        assert await _status(client, "/health") == 200
        redis.stop()

        resp = await client.get("/health")
        assert resp.status == 503
        body = await resp.json()
        _assert_health_shape(body)
        assert body["status"] == "degraded"
        assert body["checks"]["redis"]["ok"] is False
        assert body["checks"]["postgres"]["ok"] is True
        ready = await client.get("/health/ready")
        assert ready.status == 503
        assert (await ready.json())["status"] == "unavailable"
        assert await _status(client, "/health/live") == 200
        login = await client.post(LOGIN, json=CREDS)
        assert login.status == 503
        assert (await login.json())["code"] == "dependency_unavailable"
        assert login.headers["Retry-After"] == "5"
        await eventually(lambda: not client.app[HUB].connected, within=15)
        hub = (await (await client.get("/health")).json())["checks"]["hub"]
        assert hub["ok"] is False

        redis.start()  # same port: the app's URL is unchanged
        await eventually(lambda: _health_is(client, 200), within=15)
        body = await (await client.get("/health")).json()
        assert body["status"] == "ok" and body["checks"]["hub"]["ok"] is True
        assert (await client.post(LOGIN, json=CREDS)).status == 200
    finally:
        redis.stop()


async def _health_is(client, status: int) -> bool:
    resp = await client.get("/health")
    body = await resp.json()
    return resp.status == status and (status != 200 or body["checks"]["hub"]["ok"])


async def test_unreachable_postgres_is_503_and_recovers(app_client, make_settings, settings):
    """Postgres cut off for this app: /health and /health/ready are 503 with the same
    body, /health/live stays 200, a login is a clean 503; once reachable again the pool
    reconnects and everything is 200."""
    relay, url_for = _relay_for(settings.database_url)
    await relay.start()
    client = await app_client(make_settings(database_url=url_for(relay.port)))
    stopped = False
    try:
        await client.app[AUTH].create_user(CREDS["email"], CREDS["password"])
        assert await _status(client, "/health") == 200
        await relay.stop()
        stopped = True

        resp = await client.get("/health")
        assert resp.status == 503
        body = await resp.json()
        _assert_health_shape(body)
        assert body["status"] == "degraded"
        assert body["checks"]["postgres"]["ok"] is False
        assert body["checks"]["redis"]["ok"] is True
        assert await _status(client, "/health/ready") == 503
        assert await _status(client, "/health/live") == 200
        login = await client.post(LOGIN, json=CREDS)
        assert login.status == 503
        body = await login.json()
        assert body == {"detail": "a dependency is unavailable", "code": "dependency_unavailable"}

        await relay.start()  # same port
        stopped = False
        await eventually(lambda: _health_is(client, 200), within=15)
        assert (await client.post(LOGIN, json=CREDS)).status == 200
    finally:
        if stopped:
            await relay.start()  # let the app's pool close cleanly
        await client.close()
        await relay.stop()


async def test_slow_dependency_counts_as_down(app_client, make_settings, settings):
    """A Postgres that accepts connections but never answers is reported down within
    the dependency timeout, not waited on forever."""
    relay, url_for = _relay_for(settings.database_url)
    stalled: list[asyncio.StreamWriter] = []
    # A server that takes connections and then says nothing.
    black_hole = await asyncio.start_server(lambda r, w: stalled.append(w), "127.0.0.1", 0)
    hole_port = black_hole.sockets[0].getsockname()[1]
    connect_postgres = relay._connect
    await relay.start()
    client = await app_client(make_settings(database_url=url_for(relay.port),
                                            dependency_timeout=0.3))
    try:
        await relay.stop()
        relay._connect = lambda: asyncio.open_connection("127.0.0.1", hole_port)
        await relay.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        resp = await client.get("/health/ready")
        assert resp.status == 503
        assert loop.time() - started < 3
        body = await resp.json()
        assert body["checks"]["postgres"]["error"] == "TimeoutError"
    finally:
        await relay.stop()
        for writer in stalled:
            writer.transport.abort()
        black_hole.close()
        await black_hole.wait_closed()
        relay._connect = connect_postgres
        await relay.start()  # the app's pool closes through a working relay
        await client.close()
        await relay.stop()


async def test_metrics_count_requests_by_route_and_status(client, make_account):
    """/metrics is Prometheus text with request counts by route template and status,
    and latency histograms."""
    acct = await make_account()
    await client.get("/health")
    await client.get("/api/v1/auth/verify", headers=acct.headers)
    await client.get("/api/v1/auth/verify")
    await client.get("/no/such/route")
    await client.patch("/api/v1/orm/api_keys/12345/deactivate", headers=acct.headers)
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    expected = [
        'gateway_http_requests_total{method="GET",route="/health",status="200"} 1.0',
        'gateway_http_requests_total{method="GET",route="/api/v1/auth/verify",status="200"} 1.0',
        'gateway_http_requests_total{method="GET",route="/api/v1/auth/verify",status="401"} 1.0',
        'gateway_http_requests_total{method="POST",route="/api/v1/auth/login",status="200"} 1.0',
        'gateway_http_requests_total{method="GET",route="unmatched",status="404"} 1.0',
        'gateway_http_requests_total{method="PATCH",route="/api/v1/orm/api_keys/{key_id}/'
        'deactivate",status="404"} 1.0',
    ]
    for line in expected:
        assert line in text, line
    assert 'gateway_http_request_seconds_bucket{le="0.001",method="GET",route="/health"}' in text
    assert "gateway_ws_open_sockets 0.0" in text
    assert "gateway_hub_reconnects_total 0.0" in text


async def test_metrics_are_per_app(client, app_client, settings):
    """Two apps in one process keep separate counters (no shared global registry)."""
    other = await app_client(settings)
    await other.get("/health")
    await other.get("/health")
    text = await (await client.get("/metrics")).text()
    assert 'route="/health",status="200"' not in text
