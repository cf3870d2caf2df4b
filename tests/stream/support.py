"""Helpers shared by the stream tests (tests/stream/)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType

from fullon_gateway.keys import DB, REDIS, SETTINGS
from fullon_gateway.stream.publish import Publisher

WS = "/api/v1/cache/ws"


def publisher(client: Any) -> Publisher:
    """The real publisher, on the app's Redis client and prefix."""
    s = client.app[SETTINGS]
    return Publisher(client.app[REDIS], s.redis_prefix, s.history_len)


async def connect(client: Any, token: str | None = None, path: str = WS, **query: str) -> Any:
    params = dict(query)
    if token is not None:
        params["token"] = token
    return await client.ws_connect(path, params=params, autoclose=False)


async def recv(ws: Any, wait: float = 10.0) -> Any:
    """The next JSON frame (a list when the server batched several)."""
    msg = await ws.receive(timeout=wait)
    if msg.type != WSMsgType.TEXT:
        raise AssertionError(f"expected a text frame, got {msg.type} {msg.data!r} {msg.extra!r}")
    return json.loads(msg.data)


async def request(ws: Any, action: str, params: dict[str, Any] | None = None,
                  request_id: Any = "r1", wait: float = 10.0) -> dict[str, Any]:
    """Send one action and return its reply (skipping stream frames before it)."""
    await ws.send_json({"action": action, "request_id": request_id, "params": params or {}})
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        left = deadline - asyncio.get_running_loop().time()
        frame = await recv(ws, max(left, 0.01))
        if isinstance(frame, dict) and "success" in frame and frame.get("request_id") == request_id:
            return frame


async def subscribe(ws: Any, params: dict[str, Any], request_id: Any = "s1",
                    action: str = "subscribe") -> tuple[dict[str, Any], dict[str, Any]]:
    """Subscribe; returns (ack, snapshot frame) and asserts the snapshot follows the ack.

    Frames of the socket's other subscriptions that arrive before the ack are skipped.
    """
    await ws.send_json({"action": action, "request_id": request_id, "params": params})
    while True:
        ack = await recv(ws)
        if isinstance(ack, dict) and "success" in ack and ack.get("request_id") == request_id:
            break
    assert ack["success"] is True, ack
    snap = await recv(ws)
    assert snap.get("snapshot") is True, snap
    return ack, snap


async def closed(ws: Any, wait: float = 10.0) -> tuple[int | None, str]:
    """Read until the server closes; returns (close code, reason)."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError("socket was not closed in time")
        msg = await ws.receive(timeout=left)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return ws.close_code, (msg.extra or "")
        if msg.type == WSMsgType.ERROR:
            return ws.close_code, str(msg.data)


async def make_exchange(client: Any, user_id: int, name: str = "main") -> int:
    db = client.app[DB]
    # No ON CONFLICT: in attach mode cat_exchanges is a view over fullon's table.
    cat = await db.fetchval("SELECT cat_ex_id FROM cat_exchanges WHERE name = 'kraken'")
    if cat is None:
        cat = await db.fetchval(
            "INSERT INTO cat_exchanges (name) VALUES ('kraken') RETURNING cat_ex_id")
    return int(await db.fetchval(
        "INSERT INTO exchanges (user_id, cat_ex_id, name) VALUES ($1, $2, $3) RETURNING ex_id",
        user_id, cat, name))


async def make_bot(client: Any, user_id: int, name: str = "bot") -> int:
    return int(await client.app[DB].fetchval(
        "INSERT INTO bots (user_id, name) VALUES ($1, $2) RETURNING bot_id", user_id, name))


async def login(client: Any, email: str, password: str = "pw-pw-pw-pw") -> str:
    """Create a user (role user) and return an access token for it."""
    from fullon_gateway.keys import AUTH

    await client.app[AUTH].create_user(email, password, "t")
    resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return str((await resp.json())["access_token"])
