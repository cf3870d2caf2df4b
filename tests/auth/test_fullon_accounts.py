"""In front of fullon: its users log in with their existing passwords, its API keys
work, and its ids (uid, ex_id, bot_id) are the ones the gateway serves and streams."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from fullon_gateway import cli
from fullon_gateway.keys import AUTH, SETTINGS
from tests import fullon_shape
from tests.modes import attach_modes
from tests.rest.support import call
from tests.stream.support import connect, publisher, recv, request, subscribe

pytestmark = attach_modes
LOGIN = "/api/v1/auth/login"


@pytest.fixture
async def fullon(client, database_url, db_mode):
    """fullon's own rows for two users (tests/fullon_shape.py), and a connection to them."""
    conn = await asyncpg.connect(database_url)
    seeded = await fullon_shape.seed_two_users(conn, db_mode.removeprefix("attach-"))
    yield conn, seeded
    await conn.close()


async def _login(client, mail, password):
    return await client.post(LOGIN, json={"email": mail, "password": password})


async def _raw_password(conn, uid):
    return await conn.fetchval("SELECT password::bytea FROM public.users WHERE uid = $1", uid)


async def test_bcrypt_users_log_in_and_are_upgraded_to_argon2id(client, fullon, db_mode):
    """fullon's bcrypt hash (space-padded to 64 in base.sql's character(64), unpadded in
    the ORM's varchar) verifies; the login stores an argon2id hash in schema gateway and
    leaves fullon's column byte for byte as it was; the next login uses argon2id."""
    conn, seeded = fullon
    alice = seeded["users"]["alice"]
    raw_before = await _raw_password(conn, alice.uid)
    stored = await conn.fetchval("SELECT password FROM public.users WHERE uid = $1", alice.uid)
    if db_mode == "attach-base":
        assert len(stored) == 64 and stored.endswith("    "), "base.sql pads the hash"
    else:
        assert len(stored) == 60
    resp = await _login(client, alice.mail, alice.password)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["user"]["user_id"] == alice.uid, "fullon's uid is the gateway's user id"
    upgraded = await conn.fetchval(
        "SELECT password_hash FROM gateway.user_state WHERE user_id = $1", alice.uid)
    assert upgraded.startswith("$argon2id$")
    assert await _raw_password(conn, alice.uid) == raw_before
    assert (await _login(client, alice.mail, "wrong-password")).status == 401
    assert (await _login(client, alice.mail, alice.password)).status == 200
    assert not client.app[AUTH].passwords.needs_rehash(upgraded)


async def test_plaintext_legacy_password_is_refused_until_reset(client, fullon, caplog):
    """A monolith-era row holds its password unhashed: the right password gets 401
    password_reset_required (a wrong one the usual invalid_credentials), the operator is
    told which user and which command; after `reset-password` the new password works and
    fullon's column is untouched."""
    conn, _seeded = fullon
    uid = await conn.fetchval(
        """INSERT INTO public.users (mail, password, f2a, role, name, lastname, phone, id_num)
           VALUES ('old@fullon', 'password', '', 'user', 'Old', '', '', '') RETURNING uid""")
    raw_before = await _raw_password(conn, uid)
    with caplog.at_level(logging.WARNING, logger="fullon_gateway.auth.sessions"):
        resp = await _login(client, "old@fullon", "password")
    assert resp.status == 401
    assert (await resp.json())["code"] == "password_reset_required"
    assert f"user {uid} has a legacy unhashed password" in caplog.text
    assert "reset-password" in caplog.text
    assert "password'" not in caplog.text and ": password" not in caplog.text
    resp = await _login(client, "old@fullon", "not-it")
    assert (await resp.json())["code"] == "invalid_credentials"
    status = await asyncio.to_thread(cli.main, [
        "reset-password", "--email", "old@fullon", "--password", "a-new-password-1",
        "--database-url", client.app[SETTINGS].database_url])
    assert status == 0
    assert (await _login(client, "old@fullon", "a-new-password-1")).status == 200
    assert (await _login(client, "old@fullon", "password")).status == 401
    assert await _raw_password(conn, uid) == raw_before


async def test_admin_mail_makes_an_admin_whatever_the_role(client, fullon):
    """As fullon decides: the user whose mail is the admin_mail setting is an admin even
    with role 'user'; fullon's role column is left as it is."""
    conn, _seeded = fullon
    await conn.execute(
        """INSERT INTO public.users (mail, password, f2a, role, name, lastname, phone, id_num)
           VALUES ('admin@fullon', $1, '', 'user', 'Admin', '', '', '')""",
        fullon_shape.bcrypt_hash("password"))
    resp = await _login(client, "admin@fullon", "password")
    assert resp.status == 200
    token = (await resp.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = await (await client.get("/api/v1/orm/users/me", headers=headers)).json()
    assert me["role"] == "admin"
    users = await client.get("/api/v1/orm/users", headers=headers)
    assert users.status == 200
    assert {u["email"] for u in (await users.json())["items"]} >= {"alice@fullon", "bob@fullon"}
    assert await conn.fetchval("SELECT role FROM public.users WHERE mail = 'admin@fullon'") \
        == "user"


async def test_fullon_ids_and_naive_utc_times_are_served(client, fullon):
    """Alice sees her fullon bot, account, order and trade under fullon's ids, with fullon's
    naive timestamps read as UTC; Bob's are 404 to her."""
    _conn, seeded = fullon
    alice, bob = seeded["users"]["alice"], seeded["users"]["bob"]
    token = (await (await _login(client, alice.mail, alice.password)).json())["access_token"]
    who = {"Authorization": f"Bearer {token}"}

    class Who:
        headers = who

    bots = await call(client, "GET", "/bots", Who)
    assert [(b["bot_id"], b["ex_ids"]) for b in bots["items"]] == [(alice.bot_id, [alice.ex_id])]
    orders = await call(client, "GET", "/orders", Who)
    assert [o["ex_id"] for o in orders["items"]] == [alice.ex_id]
    assert orders["items"][0]["created_at"] == "2026-01-02T03:04:05Z"
    trades = await call(client, "GET", "/trades", Who)
    assert trades["items"][0]["ts"] == "2026-01-02T03:05:00Z"
    assert trades["items"][0]["order_id"] == orders["items"][0]["order_id"], \
        "a fill reaches its order through ex_order_id"
    await call(client, "GET", f"/bots/{bob.bot_id}", Who, 404)
    await call(client, "GET", f"/exchanges/user-exchanges/{bob.ex_id}", Who, 404)


async def test_private_streams_resolve_through_fullon_ids(client, fullon):
    """Live data published under fullon's ex_id and bot_id (the ids fullon_cache keys on)
    reaches their owner's sockets, and another user cannot subscribe to them."""
    _conn, seeded = fullon
    alice, bob = seeded["users"]["alice"], seeded["users"]["bob"]
    tokens = {}
    for u in (alice, bob):
        tokens[u.uid] = (await (await _login(client, u.mail, u.password)).json())["access_token"]
    ws = await connect(client, tokens[alice.uid])
    await subscribe(ws, {"stream": "orders", "ex_id": alice.ex_id}, request_id="o")
    await subscribe(ws, {"stream": "bots", "bot_id": alice.bot_id}, request_id="b")
    pub = publisher(client)
    await pub.order(bob.ex_id, {"order_id": "bobs"})
    await pub.order(alice.ex_id, {"order_id": "alices"})
    await pub.bot_status(alice.bot_id, {"status": "running"})
    frames = [await recv(ws) for _ in range(2)]
    assert frames[0]["result"]["ex_id"] == alice.ex_id
    assert frames[0]["result"]["order_id"] == "alices"
    assert frames[1]["result"]["bot_id"] == alice.bot_id
    ws_b = await connect(client, tokens[bob.uid])
    for params in ({"stream": "orders", "ex_id": alice.ex_id},
                   {"stream": "bots", "bot_id": alice.bot_id}):
        reply = await request(ws_b, "subscribe", params)
        assert reply["success"] is False, reply
    await ws.close()
    await ws_b.close()
