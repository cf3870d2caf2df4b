"""Login throttling: per account from one address, per account, per address (a much
higher ceiling), shared through Redis, 429 + Retry-After."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
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
    assert len(keys) == 3  # the account's from this address, the account's, the address's
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


async def _login_from(client, source, email, password):
    """A login from another loopback address (Linux routes all of 127/8 to lo)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as session, session.post(
            client.make_url(LOGIN), json={"email": email, "password": password}) as resp:
        return resp.status, await resp.json()


@pytest.fixture
def three_counters(make_settings):
    return make_settings(login_max_failures=3, login_max_failures_per_account=8,
                         login_max_failures_per_address=60, login_window=WINDOW)


async def test_a_guesser_cannot_lock_the_owner_out_from_elsewhere(app_client, three_counters):
    """Failures at one account from one address throttle that address for that account
    only: the owner, from their own address, still logs in; yet guesses spread over many
    addresses hit the per-account limit, for every address."""
    client = await app_client(three_counters)
    await _user(client, "a@example.com")
    for _ in range(3):
        assert (await _login_from(client, "127.0.0.2", "a@example.com", "x"))[0] == 401
    status, body = await _login_from(client, "127.0.0.2", "a@example.com", "x")
    assert status == 429 and "account" in body["detail"]
    assert (await _login_from(client, "127.0.0.3", "a@example.com",
                              "right-password"))[0] == 200
    # The success cleared the account's count; 8 more failures, none past 3 from any
    # one address, reach the per-account limit: the next attempt, from a fresh
    # address and with the right password, is refused.
    for source, tries in (("127.0.0.4", 3), ("127.0.0.5", 3), ("127.0.0.6", 2)):
        for _ in range(tries):
            assert (await _login_from(client, source, "a@example.com", "x"))[0] == 401
    status, body = await _login_from(client, "127.0.0.9", "a@example.com", "right-password")
    assert status == 429 and "account" in body["detail"]


async def test_one_address_with_many_users_is_not_locked_out(app_client, three_counters):
    """Behind one address (an office, a NAT), 40 failures spread over 20 users, twice
    the old per-address limit, leave everyone else there able to log in; only the
    much higher per-address ceiling (60 here) stops spraying."""
    client = await app_client(three_counters)
    await _user(client, "real@example.com")
    for i in range(20):
        for _ in range(2):
            assert (await _login(client, f"typo{i}@example.com", "x")).status == 401
    assert (await _login(client, "real@example.com", "right-password")).status == 200
    for i in range(20):
        await _login(client, f"spray{i}@example.com", "x")
    resp = await _login(client, "real@example.com", "right-password")
    assert resp.status == 429 and "address" in (await resp.json())["detail"]


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(app_client,
                                                                     make_settings):
    """With trusted_proxies set, failures count against the client the proxy names in
    X-Forwarded-For (its rightmost untrusted hop); a peer that is not a trusted proxy
    cannot choose its address with the header."""
    client = await app_client(make_settings(login_max_failures=2, trusted_proxies="127.0.0.1",
                                            login_window=WINDOW))
    await _user(client, "a@example.com")

    async def login(forwarded, password="x"):
        resp = await client.post(LOGIN, json={"email": "a@example.com", "password": password},
                                 headers={"X-Forwarded-For": forwarded})
        return resp.status

    for _ in range(2):
        assert await login("1.1.1.1, 9.9.9.9") == 401
    assert await login("2.2.2.2, 9.9.9.9") == 429, "the rightmost hop is the client"
    assert await login("9.9.9.8", "right-password") == 200, "another client is not throttled"
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        for forwarded in ("5.5.5.1", "5.5.5.2", "5.5.5.3"):
            async with session.post(client.make_url(LOGIN), headers={
                    "X-Forwarded-For": forwarded},
                    json={"email": "a@example.com", "password": "x"}) as resp:
                last = resp.status
    assert last == 429, "an untrusted peer's X-Forwarded-For is ignored"
