"""Malformed login forms get a clear 400, never a server error."""


async def test_multipart_login_without_boundary_is_400(client):
    """A multipart/form-data login with no boundary is a 400 `malformed_form`
    (schemathesis once found it answered 500)."""
    resp = await client.post(
        "/api/v1/auth/login", data=b"username=a&password=b",
        headers={"Content-Type": "multipart/form-data"},
    )
    body = await resp.json()
    assert resp.status == 400, body
    assert body["code"] == "malformed_form"
