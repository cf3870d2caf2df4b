"""The connection pool keeps every session in UTC."""

from fullon_gateway.keys import DB


async def test_sessions_stay_in_utc_after_release(client):
    """Buckets are computed in the session time zone, so it must be UTC on every
    connection, also after asyncpg's RESET ALL when a connection returns to the pool."""
    pool = client.app[DB]
    for _ in range(3):
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW timezone") == "UTC"
            await conn.execute("SET TIME ZONE 'America/New_York'")
