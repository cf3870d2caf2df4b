"""Forged, damaged and stale credentials are refused with 401 and a stable code."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fullon_gateway.keys import AUTH, DB, SETTINGS
from tests.conftest import account_maker
from tests.support import eventually

VERIFY = "/api/v1/auth/verify"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_signed(header: dict, claims: dict, key: bytes | None, digest=hashlib.sha256) -> str:
    """A JWT assembled by hand, so any header (alg none, HS256 with a PEM key) is possible."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), digest).digest()
    return signing_input + "." + _b64(signature)


def _claims_of(client, token: str) -> dict:
    return jwt.decode(token, client.app[SETTINGS].jwt_secret, algorithms=["HS256"])


def _sign(client, claims: dict) -> str:
    return jwt.encode(claims, client.app[SETTINGS].jwt_secret, algorithm="HS256")


async def _verify_with(client, token: str):
    resp = await client.get(VERIFY, headers={"Authorization": f"Bearer {token}"})
    return resp.status, await resp.json(), resp.headers


async def _refused(client, token: str, detail: str = "invalid token") -> None:
    status, body, headers = await _verify_with(client, token)
    assert status == 401, body
    assert body == {"detail": detail, "code": detail.replace(" ", "_")}
    assert headers["WWW-Authenticate"] == "Bearer"


async def test_genuine_token_is_accepted(client, make_account):
    """Control: the token the server issued, re-signed unchanged, is accepted."""
    acct = await make_account()
    status, _, _ = await _verify_with(client, _sign(client, _claims_of(client, acct.token)))
    assert status == 200


async def test_alg_none_is_refused(client, make_account):
    """An unsigned token (alg none) with valid-looking claims is refused."""
    acct = await make_account()
    claims = _claims_of(client, acct.token)
    await _refused(client, _hand_signed({"alg": "none", "typ": "JWT"}, claims, None))
    await _refused(client, _hand_signed({"alg": "None", "typ": "JWT"}, claims, None))
    await _refused(client, jwt.encode(claims, None, algorithm="none"))


async def test_hs256_with_another_secret_is_refused(client, make_account):
    """A token signed with a secret other than the server's is refused."""
    acct = await make_account()
    claims = _claims_of(client, acct.token)
    await _refused(client, jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256"))


async def test_other_hmac_algorithm_with_right_secret_is_refused(client, make_account):
    """Only the configured algorithm counts: HS512 with the right secret is refused."""
    acct = await make_account()
    secret = client.app[SETTINGS].jwt_secret.encode()
    token = _hand_signed({"alg": "HS512", "typ": "JWT"}, _claims_of(client, acct.token), secret,
                         hashlib.sha512)
    await _refused(client, token)


async def test_rs256_token_is_refused(client, make_account):
    """A token signed RS256 with an attacker's RSA key is refused (RS/HS confusion)."""
    acct = await make_account()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims_of(client, acct.token), private, algorithm="RS256")
    await _refused(client, token)


async def test_hs256_keyed_with_a_public_key_is_refused(client, make_account):
    """The classic confusion: HS256 using an RSA public key (PEM) as the secret is refused."""
    acct = await make_account()
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    token = _hand_signed({"alg": "HS256", "typ": "JWT"}, _claims_of(client, acct.token), pem)
    await _refused(client, token)


async def test_tampered_payload_is_refused(client, make_account):
    """Changing the payload (role user -> admin) while keeping the signature is refused."""
    acct = await make_account()
    header, _payload, signature = acct.token.split(".")
    claims = _claims_of(client, acct.token) | {"role": "admin"}
    forged = header + "." + _b64(json.dumps(claims).encode()) + "." + signature
    await _refused(client, forged)


@pytest.mark.parametrize("typ", ["refresh", "Access", "", None])
async def test_wrong_typ_is_refused(client, make_account, typ):
    """Only typ "access" is an access token; refresh or anything else is refused."""
    acct = await make_account()
    claims = _claims_of(client, acct.token) | {"typ": typ}
    await _refused(client, _sign(client, claims))


async def test_expired_token_is_refused_as_expired(client, make_account):
    """A correctly signed token past its exp is 401 "token expired" (code token_expired)."""
    acct = await make_account()
    now = int(time.time())
    claims = _claims_of(client, acct.token) | {"iat": now - 1000, "exp": now - 60}
    await _refused(client, _sign(client, claims), "token expired")


@pytest.mark.parametrize("claim", ["sub", "user_id", "role", "sid", "iat", "exp", "jti", "typ"])
async def test_each_required_claim_missing_is_refused(client, make_account, claim):
    """Dropping any one required claim makes an otherwise genuine token invalid."""
    acct = await make_account()
    claims = _claims_of(client, acct.token)
    del claims[claim]
    await _refused(client, _sign(client, claims))


@pytest.mark.parametrize("changes", [
    {"sub": "999999"},
    {"user_id": 999999},
    {"user_id": "x", "sub": "x"},
    {"role": "root"},
    {"sid": "not-a-uuid"},
    {"sid": str(uuid.uuid4())},
])
async def test_inconsistent_claims_are_refused(client, make_account, changes):
    """sub differing from user_id, a bad role, a malformed or unknown session id: refused."""
    acct = await make_account()
    claims = _claims_of(client, acct.token) | changes
    await _refused(client, _sign(client, claims))


async def test_token_naming_another_users_session_is_refused(client, make_account):
    """A token whose user_id does not own its sid (even correctly signed) is refused."""
    alice = await make_account()
    bob = await make_account()
    claims = _claims_of(client, alice.token) | {
        "sid": _claims_of(client, bob.token)["sid"]}
    await _refused(client, _sign(client, claims))


async def test_token_for_a_disabled_user_is_refused(client, make_account):
    """Once a user is disabled and the change announced, their live token is refused."""
    acct = await make_account()
    assert (await _verify_with(client, acct.token))[0] == 200  # cached as active
    await client.app[DB].execute("UPDATE users SET is_active = false WHERE user_id = $1",
                                 acct.user_id)
    await client.app[AUTH].announce("user", acct.user_id)
    await _refused(client, acct.token, "user disabled")


async def test_token_for_a_deleted_user_is_refused(client, make_account):
    """A token that outlives its user (deleted; sessions cascade) is refused."""
    acct = await make_account()
    await client.app[DB].execute("DELETE FROM users WHERE user_id = $1", acct.user_id)
    await client.app[AUTH].announce("user", acct.user_id)
    status, body, _ = await _verify_with(client, acct.token)
    assert status == 401 and body["code"] in {"invalid_token", "user_disabled"}


async def test_token_of_a_revoked_session_is_refused(client, make_account):
    """A token whose session was revoked (here directly in the store) is refused."""
    acct = await make_account()
    sid = uuid.UUID(_claims_of(client, acct.token)["sid"])
    await client.app[AUTH].revoke_session(sid, "test")
    await _refused(client, acct.token, "session revoked")


@pytest.mark.parametrize("garbage", [
    "abc", "a.b.c", "..", "x" * 100, "eyJhbGciOiJIUzI1NiJ9.e30.", "ü.ö.ä",
    "eyJhbGciOiJIUzI1NiJ9." + "A" * 5000 + ".sig",
    "fullon_ak_not-a-real-key", "fullon_ak_" + "k" * 300,
])
async def test_garbage_bearer_values_are_refused(client, garbage):
    """Random strings, broken JWTs and fake API keys are 401 invalid_token, never 500."""
    resp = await client.get(VERIFY, headers={"Authorization": f"Bearer {garbage}"})
    assert resp.status == 401
    assert await resp.json() == {"detail": "invalid token", "code": "invalid_token"}


async def test_empty_x_api_key_is_missing_token(client):
    """An empty X-API-Key header is 401 "missing token"."""
    resp = await client.get(VERIFY, headers={"X-API-Key": " "})
    assert resp.status == 401
    assert (await resp.json())["code"] == "missing_token"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token abc", "Bearer", "Bearer   ",
                                    "bearerabc"])
async def test_non_bearer_authorization_is_refused(client, make_account, header):
    """Authorization must be 'Bearer <token>'; other schemes or an empty value are 401."""
    resp = await client.get(VERIFY, headers={"Authorization": header})
    assert resp.status == 401
    body = await resp.json()
    assert body["code"] == "invalid_token" and "Bearer" in body["detail"]


async def test_bearer_scheme_is_case_insensitive(client, make_account):
    """'bearer' in lower case is accepted (RFC 6750 schemes are case-insensitive)."""
    acct = await make_account()
    resp = await client.get(VERIFY, headers={"Authorization": f"bearer {acct.token}"})
    assert resp.status == 200


async def test_bad_credential_is_refused_even_on_public_routes(client):
    """A broken token on a public route is a 401, not silently anonymous."""
    resp = await client.get("/health/live", headers={"Authorization": "Bearer junk"})
    assert resp.status == 401
    assert (await resp.json())["code"] == "invalid_token"


async def test_oversized_headers_get_a_4xx_and_the_server_keeps_answering(client, make_account):
    """A huge Authorization header is refused with a 4xx; the server still answers after."""
    acct = await make_account()
    resp = await client.get(VERIFY, headers={"Authorization": "Bearer " + "a" * 20_000})
    assert 400 <= resp.status < 500
    assert "Traceback" not in await resp.text()
    many = {f"X-Filler-{i}": "v" * 100 for i in range(200)}
    resp = await client.get(VERIFY, headers=many | acct.headers)
    assert 400 <= resp.status < 500
    assert (await client.get(VERIFY, headers=acct.headers)).status == 200


async def test_large_but_allowed_header_token_is_invalid_token(client):
    """A JWT-shaped token over 4 KiB (within header limits) is 401 invalid_token."""
    token = "eyJ" + "a" * 3000 + "." + "b" * 2000 + ".c"
    resp = await client.get(VERIFY, headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401
    assert (await resp.json())["code"] == "invalid_token"


async def test_configured_hs512_issues_and_accepts_hs512(app_client, make_settings):
    """With jwt_algorithm HS512 (and a 64-character secret) tokens are HS512 and work;
    an HS256 token signed with the same secret is then refused."""
    client = await app_client(make_settings(jwt_algorithm="HS512", jwt_secret="z" * 64))
    await client.app[AUTH].create_user("h@example.com", "pw-123456")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "h@example.com", "password": "pw-123456"})
    token = (await resp.json())["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    assert (await _verify_with(client, token))[0] == 200
    claims = jwt.decode(token, "z" * 64, algorithms=["HS512"])
    await _refused(client, jwt.encode(claims, "z" * 64, algorithm="HS256"))


@pytest.mark.parametrize("header,value", [
    (b"X-API-Key", b"fullon_ak_\xff\xfe"),
    (b"Authorization", b"Bearer fullon_ak_\xff"),
    (b"Authorization", b"Bearer a.b\xff.c"),
    (b"Authorization", b"Bearer \xff"),
    (b"X-API-Key", b"fullon_ak_\xc3\xa9abc"),
])
async def test_non_ascii_credential_bytes_are_invalid_token(client, header, value):
    """Raw non-UTF-8 or non-ASCII bytes in a credential header are 401 invalid_token."""

    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"GET " + VERIFY.encode() + b" HTTP/1.1\r\nHost: t\r\n" + header + b": "
                 + value + b"\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), answer
    assert json.loads(body) == {"detail": "invalid token", "code": "invalid_token"}


async def test_verified_token_cache_still_enforces_expiry(app_client, make_settings):
    """A token verified once (and cached) is refused as expired once its exp passes."""
    client = await app_client(make_settings(access_ttl=1))
    await client.app[AUTH].create_user("t@example.com", "pw-123456")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "t@example.com", "password": "pw-123456"})
    token = (await resp.json())["access_token"]
    status, body, _ = await _verify_with(client, token)
    if status == 200:  # verified and cached; now wait for exp to pass

        async def refused() -> bool:
            return (await _verify_with(client, token))[0] != 200

        await eventually(refused, within=5, every=0.05, what="token expiry")
        status, body, _ = await _verify_with(client, token)
    assert status == 401 and body["code"] == "token_expired"
    status, body, _ = await _verify_with(client, token)  # and again, uncached
    assert status == 401 and body["code"] == "token_expired"


async def test_verified_token_cache_is_bounded(app_client, make_settings):
    """The verified-token cache evicts its oldest entry when full (token_cache_max);
    evicted tokens still verify (they are decoded again)."""
    client = await app_client(make_settings(token_cache_max=2))
    make_account = account_maker(client)
    accounts = [await make_account() for _ in range(3)]
    for acct in accounts + accounts:
        assert (await _verify_with(client, acct.token))[0] == 200
    assert len(client.app[AUTH].codec._verified) <= 2
