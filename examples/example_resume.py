"""Resume a stream after a disconnect with `since`: nothing missed, nothing twice.

Subscribes to a stream, remembers the last seq, disconnects, waits while the
publisher (e.g. `python -m fullon_gateway demo`) keeps going, reconnects with
`since: <last seq>` and checks the gateway replayed the gap (`recovered: true`) with
every seq greater than the last one seen and in order. When the gap is older than the
history the gateway says `recovered: false` and sends a fresh snapshot instead; the
example reports which one happened.

    python examples/example_resume.py --stream trades --pause 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import aiohttp
from _client import StepFailed, base_parser, check, login, run, ws_url


def params_for(stream: str, exchange: str, symbol: str) -> dict[str, Any]:
    if stream == "tickers":
        return {"stream": "tickers", "exchange": exchange, "symbols": "*"}
    if stream == "trades":
        return {"stream": "trades", "exchange": exchange, "symbol": symbol}
    return {"stream": stream}


async def frames(ws: aiohttp.ClientWebSocketResponse, wait: float) -> Any:
    msg = await ws.receive(timeout=wait)
    if msg.type != aiohttp.WSMsgType.TEXT:
        raise StepFailed(f"socket closed: {ws.close_code} {msg.extra!r}")
    return json.loads(msg.data)


async def main(args: argparse.Namespace) -> None:
    base = args.url.rstrip("/")
    ws_base = ws_url(base, "/api/v1/cache/ws")
    params = params_for(args.stream, args.exchange, args.symbol)
    async with aiohttp.ClientSession() as session:
        token = (await login(session, base, args.email, args.password,
                             what="log in"))["access_token"]

        async with session.ws_connect(ws_base, params={"token": token}) as ws:
            await ws.send_json({"action": "subscribe", "request_id": "1", "params": params})
            ack = await frames(ws, 10)
            check(ack.get("success") is True, "subscribed", ack)
            snap = await frames(ws, 10)
            last = snap["seq"]
            first_live = await frames(ws, 15)  # prove the stream is live before leaving
            last = first_live["seq"]
            check(first_live["seq"] > snap["seq"], f"live update after snapshot (seq {last})")
        print(f"      disconnected at seq {last}; waiting {args.pause}s")
        await asyncio.sleep(args.pause)  # the point of the example: time passes offline

        async with session.ws_connect(ws_base, params={"token": token}) as ws:
            await ws.send_json({"action": "subscribe", "request_id": "2",
                                "params": {**params, "since": last}})
            ack = await frames(ws, 10)
            check(ack.get("success") is True, "resubscribed with since", ack)
            recovered = ack["result"]["recovered"]
            if not recovered:
                snap = await frames(ws, 10)
                check(snap.get("snapshot") is True, "gap too old: fresh snapshot instead")
                return
            seqs = []
            while True:
                frame = await frames(ws, 15)
                seqs.append(frame["seq"])
                if not frame.get("recovered"):
                    break  # the first live frame after the replay
            check(len(seqs) > 1, f"replayed {len(seqs) - 1} missed updates (recovered: true)")
            check(all(s > last for s in seqs), "every replayed seq is after the last one seen")
            check(seqs == sorted(set(seqs)), "no gap reordering and no duplicate")


def parse() -> argparse.Namespace:
    parser = base_parser(__doc__.splitlines()[0], email="demo@example.com",
                         password="demo-password")
    parser.add_argument("--stream", default="trades",
                        choices=["tickers", "trades", "orders", "accounts", "bots"])
    parser.add_argument("--exchange", default="kraken")
    parser.add_argument("--symbol", default="BTC/USD")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds disconnected")
    return parser.parse_args()


if __name__ == "__main__":
    run(main, parse())
