"""The error middleware: every failure is {"detail", "code"} JSON with the right status."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import marshmallow
import pytest
from aiohttp import web

from fullon_gateway.app import create_app
from fullon_gateway.auth.identity import public
from fullon_gateway.errors import Conflict, RateLimited, invalid_from_marshmallow
from fullon_gateway.keys import AUTH
from tests.support import eventually

LOGIN = "/api/v1/auth/login"


@public
async def _boom(request: web.Request) -> web.Response:
    """A bug: an exception nobody planned for."""
    raise RuntimeError("secret internals: password=hunter2")


@public
async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/health")


@public
async def _unsupported(request: web.Request) -> web.Response:
    raise web.HTTPUnsupportedMediaType()


@public
async def _conflict(request: web.Request) -> web.Response:
    raise Conflict("that name is taken", code="name_taken")


@public
async def _limited(request: web.Request) -> web.Response:
    raise RateLimited(0.2)


@public
async def _nested_invalid(request: web.Request) -> web.Response:
    raise marshmallow.ValidationError({"a": {"b": ["bad b"]}, "c": [{"d": ["bad d"]}]})


class _Teapot(web.HTTPClientError):
    status_code = 418


@public
async def _teapot_no_reason(request: web.Request) -> web.Response:
    raise _Teapot(reason="")


@pytest.fixture
async def client(aiohttp_client, settings):
    """The real app plus routes that fail in ways the real routes cannot be made to."""
    app = create_app(settings)
    app.router.add_get("/test/boom", _boom)
    app.router.add_get("/test/redirect", _redirect)
    app.router.add_get("/test/unsupported", _unsupported)
    app.router.add_get("/test/teapot", _teapot_no_reason)
    app.router.add_get("/test/conflict", _conflict)
    app.router.add_get("/test/limited", _limited)
    app.router.add_get("/test/nested", _nested_invalid)
    return await aiohttp_client(app)


async def _error(resp, status: int, code: str) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    text = await resp.text()
    assert "Traceback" not in text and 'File "' not in text
    body = await resp.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    return body


async def test_unknown_route_is_404_json(client):
    """An unknown path is 404 {"detail","code":"not_found"} JSON, even without a token."""
    body = await _error(await client.get("/nope"), 404, "not_found")
    assert set(body) == {"detail", "code"}
    await _error(await client.post("/api/v1/nope", json={}), 404, "not_found")


async def test_unknown_route_with_bad_token_is_still_404(client):
    """Routing errors come before auth: an unknown path with a junk token is 404."""
    resp = await client.get("/nope", headers={"Authorization": "Bearer junk"})
    await _error(resp, 404, "not_found")


async def test_wrong_method_is_405_json_with_allow(client):
    """A known path with the wrong method is 405 JSON and names the allowed methods."""
    body = await _error(await client.get(LOGIN), 405, "method_not_allowed")
    assert set(body) == {"detail", "code"}
    resp = await client.delete("/api/v1/auth/verify")
    await _error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


async def test_body_over_the_limit_is_413_json(app_client, make_settings):
    """A JSON or form body over max_body_bytes is 413 payload_too_large, and the app
    keeps serving."""
    client = await app_client(make_settings(max_body_bytes=1024))
    big = {"email": "a@example.com", "password": "x" * 4000}
    await _error(await client.post(LOGIN, json=big), 413, "payload_too_large")
    await _error(await client.post(LOGIN, data=big), 413, "payload_too_large")
    small = await client.post(LOGIN, json={"email": "a@example.com", "password": "x"})
    assert small.status == 401


@pytest.mark.parametrize("raw", [b"{", b"not json", b"{'a': 1}", b"\xff\xfe", b""])
async def test_malformed_json_is_400(client, raw):
    """A body that is not JSON (or empty) is 400 malformed_json with a message."""
    resp = await client.post(LOGIN, data=raw, headers={"Content-Type": "application/json"})
    await _error(resp, 400, "malformed_json")


@pytest.mark.parametrize("raw", [b"[1, 2]", b"\"text\"", b"42", b"null"])
async def test_json_that_is_not_an_object_is_400(client, raw):
    """Valid JSON that is not an object is 400 malformed_json saying so."""
    resp = await client.post(LOGIN, data=raw, headers={"Content-Type": "application/json"})
    body = await _error(resp, 400, "malformed_json")
    assert "object" in body["detail"]


async def test_schema_violation_is_422_with_fields(client):
    """A body breaking the schema is 422 validation_error with fields per name."""
    resp = await client.post(LOGIN, json={"email": 7, "extra": True})
    body = await _error(resp, 422, "validation_error")
    assert set(body["fields"]) >= {"email", "extra", "password"}
    assert all(isinstance(v, list) and v for v in body["fields"].values())
    assert "email" in body["detail"]


async def test_nested_validation_messages_are_flattened(client):
    """Nested marshmallow messages become dotted field names."""
    body = await _error(await client.get("/test/nested"), 422, "validation_error")
    assert body["fields"] == {"a.b": ["bad b"], "c.d": ["bad d"]}


def test_invalid_from_marshmallow_handles_bare_messages():
    """A schema-level string message lands under _schema."""
    err = invalid_from_marshmallow(marshmallow.ValidationError("whole body is wrong"))
    assert err.status == 422 and err.fields == {"_schema": ["whole body is wrong"]}
    err = invalid_from_marshmallow(marshmallow.ValidationError({"n": 5}))
    assert err.fields == {"n": ["5"]}


async def test_unexpected_exception_is_500_without_traceback(client, caplog):
    """A bug answers 500 internal_error with no trace or internals; the log has the
    traceback."""
    with caplog.at_level(logging.ERROR, logger="fullon_gateway.errors"):
        resp = await client.get("/test/boom")
        body = await _error(resp, 500, "internal_error")
    assert body == {"detail": "internal error", "code": "internal_error"}
    assert "hunter2" not in await resp.text()
    [record] = [r for r in caplog.records if r.name == "fullon_gateway.errors"]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])
    assert (await client.get("/health/live")).status == 200


async def test_redirects_pass_through(client):
    """A 3xx raised by a view is not turned into an error."""
    resp = await client.get("/test/redirect", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/health"


async def test_other_http_errors_become_json(client):
    """aiohttp's own HTTP errors are rendered as JSON with a stable code."""
    await _error(await client.get("/test/unsupported"), 415, "unsupported_media_type")
    body = await _error(await client.get("/test/teapot"), 418, "http_error")
    assert body["detail"] == "http error"


async def test_api_errors_keep_their_code_and_headers(client):
    """Conflict keeps its custom code; RateLimited sets Retry-After (at least 1 second)."""
    body = await _error(await client.get("/test/conflict"), 409, "name_taken")
    assert body["detail"] == "that name is taken"
    resp = await client.get("/test/limited")
    await _error(resp, 429, "rate_limited")
    assert resp.headers["Retry-After"] == "1"


async def test_postgres_dying_mid_query_is_503(client, settings):
    """When Postgres drops the connection in the middle of a request's query, the
    client gets 503 dependency_unavailable (not a 500), and the next request works."""
    await client.app[AUTH].create_user("a@example.com", "pw-123456")
    admin = await asyncpg.connect(settings.database_url)
    try:
        locker = admin.transaction()
        await locker.start()
        await admin.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        login = asyncio.create_task(
            client.post(LOGIN, json={"email": "a@example.com", "password": "pw-123456"}))
        await eventually(lambda: admin.fetchval(
            """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND wait_event_type = 'Lock'"""), what="login blocked on the lock")
        resp = await login
        await locker.rollback()
    finally:
        await admin.close()
    body = await _error(resp, 503, "dependency_unavailable")
    assert resp.headers["Retry-After"] == "5"
    assert body["detail"] == "a dependency is unavailable"
    again = await client.post(LOGIN, json={"email": "a@example.com", "password": "pw-123456"})
    assert again.status == 200


async def test_errors_are_counted_in_metrics(client):
    """Error answers are counted under their real status, 500s included."""
    await client.get("/test/boom")
    await client.get("/nope")
    text = await (await client.get("/metrics")).text()
    assert 'route="/test/boom",status="500"' in text
    assert 'route="unmatched",status="404"' in text


@pytest.mark.parametrize("payload", [
    {"email": "a\u0000@example.com", "password": "x"},
    {"username": "a@example.com", "password": "x\u0000"},
])
async def test_nul_characters_are_invalid_input(client, payload):
    """Text with a NUL character, which Postgres cannot store, is a 422, not a 500."""
    resp = await client.post(LOGIN, json=payload)
    if "\u0000" in payload.get("password", ""):
        # A password is only hashed, never stored: NUL in it is just a wrong password.
        await _error(resp, 401, "invalid_credentials")
    else:
        await _error(resp, 422, "invalid_text")


async def test_nul_in_a_stored_name_is_invalid_input(client, make_account):
    """An API key name with a NUL character is refused with 422 invalid_text."""
    acct = await make_account()
    resp = await client.post("/api/v1/orm/api_keys/me", headers=acct.headers,
                             json={"name": "bad\u0000name", "scopes": ["read"]})
    await _error(resp, 422, "invalid_text")


async def test_options_answers_with_the_allowed_methods(client):
    """OPTIONS on any route is 204 with an Allow that lists the route's methods and
    OPTIONS itself, needs no credentials; a 405 names OPTIONS in its Allow too."""
    for path, methods in (("/api/v1/orm/bots", {"GET", "HEAD", "POST", "OPTIONS"}),
                          (LOGIN, {"POST", "OPTIONS"}),
                          ("/api/v1/orm/bots/1", {"GET", "HEAD", "PATCH", "DELETE",
                                                  "OPTIONS"})):
        resp = await client.options(path)
        assert resp.status == 204, (path, resp.status)
        assert {m.strip() for m in resp.headers["Allow"].split(",")} == methods
    resp = await client.put("/api/v1/orm/bots")
    assert resp.status == 405 and "OPTIONS" in resp.headers["Allow"]
    assert (await client.options("/no/such/path")).status == 404
