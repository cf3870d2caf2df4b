"""Login throttling: per account and per address, shared through Redis, 429 + Retry-After."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from fullon_gateway.keys import AUTH

LOGIN = "/api/v1/auth/login"
MAX_FAILURES = 3
PER_ADDRESS = 7
WINDOW = 60


@pytest.fixture
def settings(settings):
    """Small limits so a test reaches them in a few requests."""
    return dataclasses.replace(settings, login_max_failures=MAX_FAILURES,
                               login_max_failures_per_address=PER_ADDRESS,
                               login_window=WINDOW)


async def _user(client, email, password="right-password"):
    await client.app[AUTH].create_user(email, password)


async def _login(client, email, password):
    return await client.post(LOGIN, json={"email": email, "password": password})


async def test_n_plus_first_failure_is_429_with_retry_after(client):
    """N failed logins are 401; the next attempt in the window is 429 with Retry-After."""
    await _user(client, "a@example.com")
    for _ in range(MAX_FAILURES):
        assert (await _login(client, "a@example.com", "wrong")).status == 401
    resp = await _login(client, "a@example.com", "wrong")
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= WINDOW
    body = await resp.json()
    assert body["code"] == "login_throttled" and "account" in body["detail"]


async def test_throttled_account_refuses_even_the_right_password(client):
    """Once throttled, the right password is also 429 until the window passes."""
    await _user(client, "a@example.com")
    for _ in range(MAX_FAILURES):
        await _login(client, "a@example.com", "wrong")
    resp = await _login(client, "a@example.com", "right-password")
    assert resp.status == 429


async def test_account_counter_ignores_email_case(client):
    """Varying the email's case or spaces does not get around the account counter."""
    await _user(client, "a@example.com")
    for variant in ("a@example.com", "A@EXAMPLE.COM", " a@Example.com "):
        assert (await _login(client, variant, "wrong")).status == 401
    assert (await _login(client, "a@example.com", "wrong")).status == 429


async def test_success_resets_the_account_counter(client):
    """A successful login clears the account's failures: N more failures are 401 again."""
    await _user(client, "a@example.com")
    for _ in range(MAX_FAILURES - 1):
        assert (await _login(client, "a@example.com", "wrong")).status == 401
    assert (await _login(client, "a@example.com", "right-password")).status == 200
    for _ in range(MAX_FAILURES):
        assert (await _login(client, "a@example.com", "wrong")).status == 401
    assert (await _login(client, "a@example.com", "wrong")).status == 429


async def test_unknown_accounts_are_throttled_too(client):
    """Guessing at an email that does not exist is throttled like a real account."""
    for _ in range(MAX_FAILURES):
        assert (await _login(client, "ghost@example.com", "x")).status == 401
    assert (await _login(client, "ghost@example.com", "x")).status == 429


async def test_throttling_one_account_leaves_others_alone(client):
    """Another account from the same address still logs in while one is throttled."""
    await _user(client, "a@example.com")
    await _user(client, "b@example.com")
    for _ in range(MAX_FAILURES):
        await _login(client, "a@example.com", "wrong")
    assert (await _login(client, "a@example.com", "wrong")).status == 429
    assert (await _login(client, "b@example.com", "right-password")).status == 200


async def test_per_address_limit_spans_accounts(client):
    """Failures across many accounts from one address hit the address limit: then every
    login from that address is 429, even a correct one, and success does not reset it."""
    await _user(client, "real@example.com")
    for i in range(PER_ADDRESS):
        assert (await _login(client, f"guess{i}@example.com", "x")).status == 401
    resp = await _login(client, "real@example.com", "right-password")
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert "address" in (await resp.json())["detail"]


async def test_success_does_not_reset_the_address_counter(client):
    """A good password between guesses does not clear the address's failures."""
    await _user(client, "real@example.com")
    for i in range(PER_ADDRESS - 1):
        await _login(client, f"guess{i}@example.com", "x")
    assert (await _login(client, "real@example.com", "right-password")).status == 200
    assert (await _login(client, "other@example.com", "x")).status == 401
    assert (await _login(client, "real@example.com", "right-password")).status == 429


async def test_throttle_is_shared_between_gateway_processes(client, app_client, settings):
    """Counters live in Redis: failures in one gateway count in another."""
    await _user(client, "a@example.com")
    second = await app_client(settings)
    for gateway in (client, second, client):
        assert (await _login(gateway, "a@example.com", "wrong")).status == 401
    assert (await _login(second, "a@example.com", "wrong")).status == 429


async def test_form_logins_are_throttled(client):
    """The OAuth2 form path counts failures the same way."""
    await _user(client, "a@example.com")
    for _ in range(MAX_FAILURES):
        resp = await client.post(LOGIN, data={"username": "a@example.com", "password": "no"})
        assert resp.status == 401
    resp = await client.post(LOGIN, data={"username": "a@example.com", "password": "no"})
    assert resp.status == 429 and "Retry-After" in resp.headers


async def test_window_expiry_lifts_the_throttle(client, redis_client, settings):
    """When the window's time runs out the account can log in again."""
    await _user(client, "a@example.com")
    for _ in range(MAX_FAILURES):
        await _login(client, "a@example.com", "wrong")
    assert (await _login(client, "a@example.com", "right-password")).status == 429
    # Shorten what is left of the window in Redis instead of waiting a minute.
    keys = [k async for k in redis_client.scan_iter(
        match=settings.redis_prefix + "gateway:login_fail:*")]
    assert len(keys) == 2  # the account's and the address's counters
    for key in keys:
        await redis_client.pexpire(key, 50)
    deadline = asyncio.get_running_loop().time() + 5
    while (status := (await _login(client, "a@example.com", "right-password")).status) == 429:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    assert status == 200


async def test_no_email_is_kept_in_clear_in_redis(client, redis_client, settings):
    """Throttle keys hash the account name: no email address appears in Redis."""
    await _login(client, "secret.person@example.com", "wrong")
    keys = [k.decode() async for k in redis_client.scan_iter(match=settings.redis_prefix + "*")]
    assert keys and not any("secret.person" in k for k in keys)


async def test_parallel_guesses_cannot_overrun_the_limit(client, redis_client, settings):
    """A burst of concurrent wrong passwords gets at most N verdicts (401); the rest
    are 429 before any password is checked, so parallelism buys no extra guesses."""
    await _user(client, "a@example.com")
    results = await asyncio.gather(*(_login(client, "a@example.com", f"guess{i}")
                                     for i in range(20)))
    statuses = sorted(r.status for r in results)
    assert statuses.count(401) <= MAX_FAILURES, statuses
    assert set(statuses) <= {401, 429}
    assert (await _login(client, "a@example.com", "right-password")).status == 429


async def test_successful_logins_do_not_use_up_the_address_allowance(client):
    """Many good logins from one address (an office behind one NAT) are never throttled."""
    await _user(client, "a@example.com")
    for _ in range(PER_ADDRESS * 2):
        assert (await _login(client, "a@example.com", "right-password")).status == 200
    for i in range(PER_ADDRESS):
        assert (await _login(client, f"guess{i}@example.com", "x")).status == 401
    assert (await _login(client, "a@example.com", "right-password")).status == 429


async def test_throttle_works_on_the_embedded_redis(app_client, settings, tmp_path):
    """On the embedded redis-server (6.2, what a zero-config start uses) a wrong
    password is a 401, not a 500, and the limit still applies."""
    from fullon_gateway.embedded import RedisProcess

    redis = RedisProcess(tmp_path / "redis")
    redis.start()
    try:
        client = await app_client(dataclasses.replace(settings, redis_url=redis.url))
        await _user(client, "a@example.com")
        for _ in range(MAX_FAILURES):
            assert (await _login(client, "a@example.com", "wrong")).status == 401
        assert (await _login(client, "a@example.com", "wrong")).status == 429
        await client.close()
    finally:
        redis.stop()
