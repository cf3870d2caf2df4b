"""ws_max_frame is inclusive: a frame of exactly the limit is read (issue 11, item 8)."""

from __future__ import annotations

import json

import pytest

from tests.stream.support import closed, connect, recv


def _ping_of_size(size: int) -> str:
    """A ping request whose JSON text is exactly ``size`` bytes."""
    frame = json.dumps({"action": "ping", "request_id": "p", "params": {"pad": ""}})
    return frame.replace('"pad": ""', '"pad": "' + "y" * (size - len(frame)) + '"')


@pytest.mark.parametrize("limit", [1024, 64 * 1024])
async def test_a_frame_of_exactly_the_limit_is_accepted(app_client, make_settings,
                                                        make_account, limit):
    """A frame of exactly ws_max_frame bytes (64 KiB by default) is read and answered
    on an open socket; one byte more closes the socket 1009."""
    client = await app_client(make_settings(ws_max_frame=limit))
    account = await make_account()
    ws = await connect(client, account.token)
    exact = _ping_of_size(limit)
    assert len(exact.encode()) == limit
    await ws.send_str(exact)
    reply = await recv(ws)
    # Read and answered (ping takes no params: INVALID_PARAMS is the answer it earns).
    assert reply.get("request_id") == "p" and "success" in reply, reply
    assert not ws.closed
    await ws.send_str(_ping_of_size(limit + 1))
    code, _reason = await closed(ws)
    assert code == 1009
