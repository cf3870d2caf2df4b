"""POST /api/v1/auth/login: JSON and OAuth2 form logins, their answers and failures."""

from __future__ import annotations

import jwt
import pytest

from fullon_gateway.keys import AUTH, DB, SETTINGS
from tests.modes import DB_MODES

# The same tests, on the gateway's own schema and attached to fullon's (both shapes).
pytestmark = pytest.mark.parametrize("db_mode", DB_MODES, indirect=True)

LOGIN = "/api/v1/auth/login"
CREDS = {"email": "alice@example.com", "password": "s3cret-password"}


async def _user(client, email="alice@example.com", password="s3cret-password", role="user"):
    row = await client.app[AUTH].create_user(email, password, name="Alice", role=role)
    return int(row["user_id"])


def _assert_pair(body, user_id, email, role="user", name="Alice", ttl=900):
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == ttl
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) >= 32
    assert body["user"] == {"user_id": user_id, "email": email, "name": name, "role": role}


async def test_json_login_with_email_returns_token_pair_and_user(client):
    """A JSON login with email and password answers 200 with the contract.md section 3 shape."""
    user_id = await _user(client)
    resp = await client.post(LOGIN, json=CREDS)
    assert resp.status == 200, await resp.text()
    _assert_pair(await resp.json(), user_id, "alice@example.com")


async def test_json_login_with_username_field(client):
    """`username` works in place of `email` in a JSON login, case-insensitively."""
    user_id = await _user(client)
    resp = await client.post(LOGIN, json={"username": "ALICE@example.com ",
                                          "password": "s3cret-password"})
    assert resp.status == 200, await resp.text()
    _assert_pair(await resp.json(), user_id, "alice@example.com")


async def test_form_login_oauth2_password_flow(client):
    """An OAuth2 password-flow form (username, password, grant_type, scope) logs in."""
    user_id = await _user(client)
    resp = await client.post(LOGIN, data={
        "grant_type": "password", "username": "alice@example.com",
        "password": "s3cret-password", "scope": "", "client_id": "cli",
    })
    assert resp.status == 200, await resp.text()
    _assert_pair(await resp.json(), user_id, "alice@example.com")


async def test_multipart_form_login(client):
    """A multipart form login works too; file parts are ignored, not crashed on."""
    import aiohttp

    user_id = await _user(client)
    form = aiohttp.FormData()
    form.add_field("username", "alice@example.com")
    form.add_field("password", "s3cret-password")
    resp = await client.post(LOGIN, data=form())
    assert resp.status == 200, await resp.text()
    _assert_pair(await resp.json(), user_id, "alice@example.com")


async def test_access_token_carries_the_documented_claims(client):
    """The access JWT is HS256 with sub, user_id, email, role, sid, iat, exp, jti, typ."""
    user_id = await _user(client, role="admin")
    resp = await client.post(LOGIN, json=CREDS)
    body = await resp.json()
    token = body["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, client.app[SETTINGS].jwt_secret, algorithms=["HS256"])
    assert claims["sub"] == str(user_id) and claims["user_id"] == user_id
    assert claims["email"] == "alice@example.com" and claims["role"] == "admin"
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    assert {"sid", "jti"} <= set(claims)
    assert body["user"]["role"] == "admin"


async def test_wrong_password_is_401_invalid_credentials(client):
    """A wrong password is 401 invalid_credentials with WWW-Authenticate: Bearer."""
    await _user(client)
    resp = await client.post(LOGIN, json={"email": "alice@example.com", "password": "nope"})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    body = await resp.json()
    assert body["code"] == "invalid_credentials" and body["detail"]


async def test_wrong_password_in_form_is_401(client):
    """A form login with a wrong password gets the same 401 invalid_credentials."""
    await _user(client)
    resp = await client.post(LOGIN, data={"username": "alice@example.com", "password": "bad"})
    assert resp.status == 401
    assert (await resp.json())["code"] == "invalid_credentials"


async def test_unknown_email_gets_the_same_answer_as_wrong_password(client):
    """An unknown email is indistinguishable from a wrong password (status, body, header)."""
    await _user(client)
    wrong = await client.post(LOGIN, json={"email": "alice@example.com", "password": "nope"})
    unknown = await client.post(LOGIN, json={"email": "bob@example.com", "password": "nope"})
    assert unknown.status == wrong.status == 401
    assert await unknown.json() == await wrong.json()
    assert unknown.headers["WWW-Authenticate"] == wrong.headers["WWW-Authenticate"] == "Bearer"


async def test_disabled_user_cannot_log_in(client):
    """A disabled account with the right password is 401 user_disabled, no tokens."""
    user_id = await _user(client)
    await client.app[DB].execute("UPDATE users SET is_active = false WHERE user_id = $1", user_id)
    resp = await client.post(LOGIN, json=CREDS)
    assert resp.status == 401
    body = await resp.json()
    assert body["code"] == "user_disabled" and "access_token" not in body


async def test_login_body_validation(client):
    """Missing password, missing identity or unknown fields are 422 naming the field."""
    cases = [
        ({"email": "a@example.com"}, "password"),
        ({"password": "x"}, "username"),
        ({"email": "a@example.com", "password": "x", "admin": True}, "admin"),
        ({"email": "", "password": "x"}, "email"),
        ({"email": "a@example.com", "password": 5}, "password"),
    ]
    for payload, field in cases:
        resp = await client.post(LOGIN, json=payload)
        assert resp.status == 422, payload
        body = await resp.json()
        assert body["code"] == "validation_error"
        assert field in body["fields"], body


async def test_form_login_without_password_is_422(client):
    """A form without a password is 422 with fields, not a crash."""
    resp = await client.post(LOGIN, data={"username": "alice@example.com"})
    assert resp.status == 422
    assert "password" in (await resp.json())["fields"]


async def test_login_rehashes_weak_password_hashes(client):
    """A hash made with weaker argon2 parameters is upgraded at the next good login."""
    from argon2 import PasswordHasher

    user_id = await _user(client)
    weak = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash("s3cret-password")
    await client.app[DB].execute(
        "UPDATE users SET password_hash = $2 WHERE user_id = $1", user_id, weak)
    resp = await client.post(LOGIN, json=CREDS)
    assert resp.status == 200
    stored = await client.app[DB].fetchval(
        "SELECT password_hash FROM users WHERE user_id = $1", user_id)
    assert stored != weak
    assert not client.app[AUTH].passwords.needs_rehash(stored)
    again = await client.post(LOGIN, json=CREDS)
    assert again.status == 200


async def test_passwords_are_stored_hashed(client):
    """The users table holds an argon2id hash, never the password itself."""
    user_id = await _user(client)
    stored = await client.app[DB].fetchval(
        "SELECT password_hash FROM users WHERE user_id = $1", user_id)
    assert stored.startswith("$argon2id$") and "s3cret-password" not in stored


async def test_each_login_opens_its_own_session(client):
    """Two logins give two sessions with distinct tokens; the session row records the agent."""
    await _user(client)
    creds = {"email": "alice@example.com", "password": "s3cret-password"}
    one = await (await client.post(LOGIN, json=creds, headers={"User-Agent": "probe/1"})).json()
    two = await (await client.post(LOGIN, json=creds)).json()
    secret = client.app[SETTINGS].jwt_secret
    sid1 = jwt.decode(one["access_token"], secret, algorithms=["HS256"])["sid"]
    sid2 = jwt.decode(two["access_token"], secret, algorithms=["HS256"])["sid"]
    assert sid1 != sid2 and one["refresh_token"] != two["refresh_token"]
    agent = await client.app[DB].fetchval(
        "SELECT user_agent FROM sessions WHERE session_id = $1::uuid", sid1)
    assert agent == "probe/1"


@pytest.mark.parametrize("body,content_type", [
    (b"username=\xff&password=x", "application/x-www-form-urlencoded"),
    (b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\n\xff\r\n--b--\r\n',
     "multipart/form-data; boundary=b"),
    (b"garbage", "multipart/form-data"),
    (b"garbage", "multipart/form-data; boundary=zz"),
])
async def test_broken_form_bodies_are_400(client, body, content_type):
    """A form that is not UTF-8 or a multipart body without its boundary is 400
    malformed_form, not a 500."""
    resp = await client.post(LOGIN, data=body, headers={"Content-Type": content_type})
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] == "malformed_form" and "form" in body["detail"]
