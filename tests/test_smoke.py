async def test_health_ok(client):
    """With Postgres and Redis up, /health is 200 and reports both as ok."""
    resp = await client.get("/health")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["checks"]["postgres"]["ok"] and body["checks"]["redis"]["ok"]
