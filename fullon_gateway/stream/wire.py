"""One Redis connection in subscribe mode, spoken directly (RESP2 through hiredis).

The hub reads every pub/sub message of the process, so its per-message cost is the
gateway's floor for a change. redis-py's ``PubSub.get_message`` costs a timeout scope,
a retry wrapper, push-notification handling and a dict per message (profiled: about
60% of the gateway's CPU on the fullon ticker path, docs/bench.md "fullon sources").
Here one read of the socket is fed to hiredis and every complete reply in it is
returned at once: the per-message cost is hiredis' parse and the caller's dispatch.

Only what a subscriber connection needs: connect (TCP, TLS for ``rediss://``, a unix
socket), ``AUTH`` from the URL, then SUBSCRIBE/PSUBSCRIBE/UNSUBSCRIBE/PUNSUBSCRIBE/PING
written as RESP arrays. Every reply is a push (``message``, ``pmessage``,
``subscribe``, ``pong``...), so nothing waits on a particular reply after AUTH.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import ssl
from typing import Any

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import AuthenticationError, ConnectionError, ResponseError

_READ = 1 << 16  # bytes per socket read; a read holds many messages under load
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
              "required": ssl.CERT_REQUIRED}


def pack(*args: bytes | str) -> bytes:
    """A command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _tls(options: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context ``rediss://`` asks for (redis-py's query options)."""
    ctx = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    reqs = options.get("ssl_cert_reqs", "required")
    mode: ssl.VerifyMode = _CERT_REQS.get(reqs, ssl.CERT_REQUIRED) if isinstance(reqs, str) \
        else reqs
    if mode == ssl.CERT_NONE or options.get("ssl_check_hostname") in (False, "false", "False"):
        ctx.check_hostname = False
    ctx.verify_mode = mode
    if options.get("ssl_certfile"):
        ctx.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    return ctx


class Wire:
    """An open subscriber connection: ``send`` commands, ``read`` replies in batches."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = hiredis.Reader()

    @classmethod
    async def open(cls, url: str, connect_timeout: float = 2.0) -> Wire:
        options: dict[str, Any] = dict(parse_url(url))
        async with asyncio.timeout(connect_timeout):
            try:
                if "path" in options:
                    reader, writer = await asyncio.open_unix_connection(options["path"])
                else:
                    tls = _tls(options) if url.startswith("rediss://") else None
                    reader, writer = await asyncio.open_connection(
                        options.get("host", "localhost"), int(options.get("port", 6379)),
                        ssl=tls)
            except OSError as exc:
                raise ConnectionError(f"cannot connect to Redis: {exc}") from exc
            wire = cls(reader, writer)
            password = options.get("password")
            try:
                if password:
                    user = options.get("username")
                    wire.send(*(("AUTH", user, password) if user else ("AUTH", password)))
                    await wire.read()
            except ResponseError as exc:
                await wire.aclose()
                raise AuthenticationError(str(exc)) from None
            except BaseException:
                wire.close()
                raise
        return wire

    def send(self, *args: bytes | str) -> None:
        self._writer.write(pack(*args))

    async def read(self) -> list[Any]:
        """At least one reply: all the complete ones the next socket read holds.

        An error reply raises ResponseError (the connection is then given up on: a
        subscriber connection has no command whose failure it could carry on after).
        """
        parser = self._parser
        while True:
            data = await self._reader.read(_READ)
            if not data:
                raise ConnectionError("Redis closed the pub/sub connection")
            parser.feed(data)
            replies = []
            while (reply := parser.gets()) is not False:
                if isinstance(reply, hiredis.ReplyError):
                    raise ResponseError(str(reply))
                replies.append(reply)
            if replies:
                return replies

    def close(self) -> None:
        self._writer.close()

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, builtins.ConnectionError):
            await self._writer.wait_closed()
