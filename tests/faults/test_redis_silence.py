"""The hub's pub/sub connection goes silent without closing (a partition, a NAT entry
dropped: no EOF ever arrives) while Redis stays up: the hub's idle pings find it dead,
it is replaced, and a private stream resumes with nothing skipped."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis

from fullon_gateway.keys import HUB, SETTINGS
from fullon_gateway.stream.publish import Publisher
from tests.stream.support import connect, make_exchange, recv, subscribe
from tests.support import eventually


class SilencingProxy:
    """A TCP proxy to Redis. ``silence_subscribers`` makes every connection that has
    sent a SUBSCRIBE drop what either side sends from then on, without closing it;
    other connections, and new ones, keep flowing."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.links: list[dict[str, bool]] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        await self._server.wait_closed()

    def silence_subscribers(self) -> int:
        silenced = 0
        for link in self.links:
            if link["subscriber"]:
                link["silent"] = True
                silenced += 1
        return silenced

    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]
        link = {"subscriber": False, "silent": False}
        self.links.append(link)
        for src, dst, upstream in ((reader, up_writer, True), (up_reader, writer, False)):
            task = asyncio.create_task(self._pump(src, dst, link, upstream))
            self._tasks.add(task)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    link: dict[str, bool], upstream: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                if upstream and b"SUBSCRIBE" in data.upper():
                    link["subscriber"] = True
                if link["silent"]:
                    continue  # a black hole: read and dropped, nothing closed
                dst.write(data)
                await dst.drain()
        dst.close()


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


async def test_a_silent_pubsub_connection_is_replaced_and_the_stream_resumes(
        app_client, make_settings, make_account):
    """Silence the hub's connection (the proxy drops its traffic, closes nothing) and
    publish a change meanwhile: the socket does not get it live; within a few idle
    pings the hub reconnects (counted) and the socket then gets that change and every
    later one, in order, none skipped."""
    base = make_settings()
    assert base.redis_url is not None
    target = urlsplit(base.redis_url)
    proxy = SilencingProxy((target.hostname or "127.0.0.1", target.port or 6379))
    port = await proxy.start()
    try:
        client = await app_client(make_settings(redis_url=_via(base.redis_url, port),
                                                redis_idle_ping=0.2))
        account = await make_account()
        ex_id = await make_exchange(client, account.user_id)
        # The publisher is another process in production: its own connection, direct.
        pub_redis = aioredis.Redis.from_url(base.redis_url)
        s = client.app[SETTINGS]
        pub = Publisher(pub_redis, s.redis_prefix, s.history_len)
        ws = await connect(client, account.token)
        await subscribe(ws, {"stream": "orders", "ex_id": ex_id})
        await pub.order(ex_id, {"order_id": "o", "n": 0})
        assert (await recv(ws))["result"]["n"] == 0

        hub = client.app[HUB]
        reconnects = hub.reconnects
        assert proxy.silence_subscribers() == 1, "the hub's one pub/sub connection"
        await pub.order(ex_id, {"order_id": "o", "n": 1})  # lost in the black hole
        await eventually(lambda: hub.reconnects > reconnects, within=10,
                         what="the hub replaced its silent connection")
        for n in range(2, 5):
            await pub.order(ex_id, {"order_id": "o", "n": n})
        got: list[int] = []
        seqs: list[int] = []
        while len(got) < 4:
            frame = await recv(ws, wait=10)
            if frame.get("action") == "orders_update" and not frame.get("snapshot"):
                got.append(frame["result"]["n"])
                seqs.append(frame["seq"])
        assert got == [1, 2, 3, 4], "the change published into the silence was skipped"
        assert seqs == sorted(set(seqs))
        await ws.close()
        await pub_redis.aclose()
    finally:
        await proxy.stop()
