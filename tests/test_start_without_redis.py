"""The gateway starts while Redis is down and recovers when it comes back."""

import redis.asyncio as aioredis

from fullon_gateway.auth.service import AUTH_CHANNEL
from fullon_gateway.embedded import RedisProcess
from tests.support import eventually


async def test_starts_with_redis_down_and_recovers(app_client, make_settings, tmp_path):
    """With Redis down at start-up the app still serves: liveness 200, health 503, a login
    503 (throttling needs Redis). Once Redis is back, health is 200 and the hub has
    subscribed the auth channel it could not subscribe at start."""
    redis_server = RedisProcess(tmp_path / "redis")
    redis_server.start()
    redis_server.stop()  # keep its port, with nothing listening on it
    client = await app_client(make_settings(redis_url=redis_server.url))
    assert (await client.get("/health/live")).status == 200
    assert (await client.get("/health")).status == 503
    login = await client.post("/api/v1/auth/login",
                              json={"email": "a@example.com", "password": "whatever-123"})
    assert login.status == 503
    assert (await login.json())["code"] == "dependency_unavailable"

    redis_server.start()
    try:
        async def healthy() -> bool:
            return (await client.get("/health")).status == 200

        # Polls the server's recovery: there is no event to wait on from outside.
        await eventually(healthy, within=30, every=0.1, what="health 200 after Redis is back")
        from fullon_gateway.keys import SETTINGS

        channel = client.app[SETTINGS].redis_prefix + AUTH_CHANNEL
        probe = aioredis.Redis.from_url(redis_server.url)
        try:
            async def listening() -> bool:
                return (await probe.pubsub_numsub(channel))[0][1] == 1

            await eventually(listening, within=30, every=0.05, what="auth listener back")
        finally:
            await probe.aclose()
    finally:
        redis_server.stop()
