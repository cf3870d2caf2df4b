"""GET /favicon.ico: browsers get an icon, not a 404."""


async def test_favicon_is_served_without_credentials(client):
    """/favicon.ico answers 200 with an ICO image (no login needed) that may be cached."""
    resp = await client.get("/favicon.ico")
    assert resp.status == 200
    assert resp.content_type == "image/vnd.microsoft.icon"
    assert "max-age" in resp.headers["Cache-Control"]
    body = await resp.read()
    assert body[:4] == b"\x00\x00\x01\x00"  # ICO header: reserved 0, type 1 (icon)
    assert b"PNG" in body[:40]
