"""Snapshot + live without gap or duplicate, seq growth, and resume from history."""

from __future__ import annotations

import asyncio

from tests.stream.support import connect, make_exchange, publisher, recv, request, subscribe

TAIL = 30  # live changes every socket must receive after its snapshot
MARGIN = 5  # extra rounds: the flag is read at a round's start, awaits follow (slack)


async def _race(client, token, ex_id):
    """Publish changes of one order and one trade series, without pause, while six
    sockets subscribe one after the other; keep publishing until every socket has its
    snapshot, then ``TAIL + MARGIN`` more. Returns ([(ws, stream, snapshot frame)], last n)."""
    pub = publisher(client)
    started, subscribed = asyncio.Event(), asyncio.Event()
    last = -1

    async def publish():
        nonlocal last
        n, after = 0, 0
        while after < TAIL + MARGIN:
            # Counted before publishing: these TAIL rounds all start after every socket
            # had its snapshot, so each socket must get them live.
            if subscribed.is_set():
                after += 1
            await pub.order(ex_id, {"order_id": "o1", "n": n})
            await pub.trade("kraken", "BTC/USD", {"n": n})
            last = n
            n += 1
            if n == 20:
                started.set()

    task = asyncio.create_task(publish())
    await started.wait()
    sockets = []
    try:
        for i in range(6):
            ws = await connect(client, token)
            if i % 2:
                _a, snap = await subscribe(ws, {"stream": "orders", "ex_id": ex_id})
                sockets.append((ws, "orders", snap))
            else:
                _a, snap = await subscribe(ws, {"stream": "trades", "exchange": "kraken",
                                                "symbol": "BTC/USD"})
                sockets.append((ws, "trades", snap))
        subscribed.set()
    finally:
        await task
    return sockets, last


async def test_snapshot_then_live_has_no_gap_and_no_duplicate(client, make_account):
    """Subscribing while a publisher races: every socket sees the snapshot, then exactly
    every later change once, in order, with seq growing past the snapshot's. The race is
    proven to have happened: each snapshot holds changes published before it, and each
    socket then receives at least TAIL changes live (published after every snapshot)."""
    acct = await make_account()
    ex_id = await make_exchange(client, acct.user_id)
    sockets, last = await _race(client, acct.token, ex_id)
    for ws, stream, snap in sockets:
        if stream == "orders":
            snapped = [snap["result"]["orders"][0]["n"]]
        else:
            snapped = [t["n"] for t in snap["result"]["trades"]]
            assert snapped == list(range(snapped[0], snapped[-1] + 1))
        assert snapped[-1] >= 19, "the snapshot was read before the publisher got going"
        ns, seqs = [], [snap["seq"]]
        while (ns[-1] if ns else snapped[-1]) < last:
            frame = await recv(ws)
            assert frame["action"] == f"{stream}_update"
            assert "snapshot" not in frame
            ns.append(frame["result"]["n"])
            seqs.append(frame["seq"])
        assert ns == list(range(snapped[-1] + 1, last + 1)), "a change was lost or duplicated"
        assert len(ns) >= TAIL, f"only {len(ns)} live changes after the snapshot: no race"
        assert seqs == sorted(set(seqs)), "seq must strictly grow"
        await ws.close()


async def test_resume_replays_from_history(client, make_account):
    """Reconnecting with since=<last seq> replays exactly what was missed (recovered: true),
    then continues live."""
    acct = await make_account()
    ex_id = await make_exchange(client, acct.user_id)
    pub = publisher(client)
    ws = await connect(client, acct.token)
    await subscribe(ws, {"stream": "orders", "ex_id": ex_id})
    await pub.order(ex_id, {"order_id": "a", "n": 0})
    last = (await recv(ws))["seq"]
    await ws.close()
    missed = [await pub.order(ex_id, {"order_id": "a", "n": i}) for i in range(1, 6)]
    ws = await connect(client, acct.token)
    await ws.send_json({"action": "subscribe", "request_id": "r",
                        "params": {"stream": "orders", "ex_id": ex_id, "since": last}})
    ack = await recv(ws)
    assert ack["success"] and ack["result"]["recovered"] is True
    replayed = [await recv(ws) for _ in range(5)]
    assert [f["seq"] for f in replayed] == missed
    assert [f["result"]["n"] for f in replayed] == [1, 2, 3, 4, 5]
    assert all(f["recovered"] is True and "snapshot" not in f for f in replayed)
    live = await pub.order(ex_id, {"order_id": "a", "n": 6})
    frame = await recv(ws)
    assert frame["seq"] == live and "recovered" not in frame
    await ws.close()


async def test_resume_too_old_sends_fresh_snapshot(app_client, make_settings, make_account):
    """When the gap is older than the bounded history, resume sends a fresh snapshot with
    recovered: false; an impossible since (newer than anything) does the same."""
    client = await app_client(make_settings(history_len=10))
    from fullon_gateway.keys import AUTH

    await client.app[AUTH].create_user("old@example.com", "pw-pw-pw-pw", "o")
    resp = await client.post("/api/v1/auth/login",
                             json={"email": "old@example.com", "password": "pw-pw-pw-pw"})
    token = (await resp.json())["access_token"]
    user_id = (await resp.json())["user"]["user_id"]
    ex_id = await make_exchange(client, user_id)
    pub = publisher(client)
    first = await pub.order(ex_id, {"order_id": "a", "n": 0})
    for i in range(1, 400):
        await pub.order(ex_id, {"order_id": "a", "n": i})
    ws = await connect(client, token)
    await ws.send_json({"action": "subscribe", "request_id": "r",
                        "params": {"stream": "orders", "ex_id": ex_id, "since": first}})
    ack = await recv(ws)
    assert ack["result"]["recovered"] is False
    snap = await recv(ws)
    assert snap["snapshot"] is True and snap["recovered"] is False
    assert snap["result"]["orders"][0]["n"] == 399
    reply = await request(ws, "unsubscribe", {"stream_key": ack["result"]["stream_key"]}, "u")
    assert reply["success"]
    await ws.send_json({"action": "subscribe", "request_id": "r2",
                        "params": {"stream": "orders", "ex_id": ex_id, "since": 2**52}})
    ack = await recv(ws)
    assert ack["result"]["recovered"] is False
    assert (await recv(ws))["recovered"] is False
    await ws.close()


async def test_multi_account_subscription_resumes_across_units(client, make_account):
    """A filterless orders subscription spans all the user's accounts; seq grows across them
    and resume replays the missed changes of every account in seq order."""
    acct = await make_account()
    ex1 = await make_exchange(client, acct.user_id, "one")
    ex2 = await make_exchange(client, acct.user_id, "two")
    pub = publisher(client)
    await pub.order(ex1, {"order_id": "before", "n": -1})  # the seq counter is running
    ws = await connect(client, acct.token)
    _ack, snap = await subscribe(ws, {"stream": "orders"})
    last = snap["seq"]
    await ws.close()
    seqs = []
    for i in range(6):
        seqs.append(await pub.order(ex1 if i % 2 else ex2, {"order_id": f"o{i}", "n": i}))
    ws = await connect(client, acct.token)
    await ws.send_json({"action": "subscribe", "request_id": "r",
                        "params": {"stream": "orders", "since": last}})
    ack = await recv(ws)
    assert ack["result"]["recovered"] is True
    frames = [await recv(ws) for _ in range(6)]
    assert [f["seq"] for f in frames] == seqs
    assert [f["result"]["ex_id"] for f in frames] == [ex2, ex1, ex2, ex1, ex2, ex1]
    await ws.close()


async def test_resume_of_a_quiet_stream_is_recovered(client, make_account):
    """Resuming a stream where nothing happened since `since` (its history is empty) is
    recovered: true with nothing to replay, not a needless fresh snapshot."""
    acct = await make_account()
    ex_quiet = await make_exchange(client, acct.user_id, "quiet")
    ex_busy = await make_exchange(client, acct.user_id, "busy")
    pub = publisher(client)
    await pub.order(ex_busy, {"order_id": "x"})  # the counter exists, the quiet unit is empty
    ws = await connect(client, acct.token)
    _ack, snap = await subscribe(ws, {"stream": "orders", "ex_id": ex_quiet})
    await ws.close()
    await pub.order(ex_busy, {"order_id": "y"})
    ws = await connect(client, acct.token)
    await ws.send_json({"action": "subscribe", "request_id": "r",
                        "params": {"stream": "orders", "ex_id": ex_quiet, "since": snap["seq"]}})
    ack = await recv(ws)
    assert ack["result"]["recovered"] is True
    seq = await pub.order(ex_quiet, {"order_id": "z"})
    frame = await recv(ws)
    assert frame["seq"] == seq and "snapshot" not in frame
    await ws.close()
