"""The HTTP listener: what guards the process before any route runs.

aiohttp's own listener admits every connection until the process runs out of file
descriptors, answers a malformed request with its parser's message in plain text (the
message quotes the offending header, which can be an Authorization header), and logs
each of those with a traceback. The gateway serves the same application through
``web.AppRunner``, with a site whose protocol factory builds ``GuardedRequestHandler``
(a ``web.RequestHandler`` that overrides its public ``handle_error``):

- a connection is admitted while its address holds fewer than
  ``max_connections_per_address`` and the process fewer than ``max_connections``;
  otherwise it gets one JSON 503 ``too_many_connections`` and is closed before a byte of
  its request is read. The total sits below the file limit, so accept() keeps working.
- a malformed request gets ``{"detail", "code"}`` and is logged as its error type only.
- idle keep-alives, and connections still sending their headers, close after
  ``keepalive_timeout`` (aiohttp's keep-alive timer covers both).
- resource errors (EMFILE, ENOBUFS...) are logged once per interval with a count.

Over 300 lines because these parts are one mechanism read together: the guard
counts what the handler admits, the site builds the handler, ``serve`` wires the
throttled log into the loop and aiohttp's logger.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from fullon_gateway.jsonutil import dumps, json_response
from fullon_gateway.settings import Settings

log = logging.getLogger(__name__)

RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# Descriptors kept free beyond the pools and the cap: logs, the hub, migrations.
_FD_RESERVE = 32
# How long a refused connection may stay open for the client to read its 503.
_REFUSAL_LINGER = 1.0
# A flood of slow bodies must not hold connections for aiohttp's default 10 s after
# their 408 (it drains a body it did not read before closing, so the client sees the
# response rather than a reset).
_LINGERING_TIME = 2.0

_PARSER_ERRORS = {
    "LineTooLong": ("a request line or header is too long", "header_too_long"),
    "BadHttpMethod": ("malformed request line", "malformed_request"),
    "BadStatusLine": ("malformed request line", "malformed_request"),
    "InvalidHeader": ("malformed header", "malformed_request"),
    "InvalidURLError": ("malformed request target", "malformed_request"),
}


class ThrottledLog:
    """Log the first event of a kind, then at most one summary line per interval.

    A flood (out of descriptors, malformed requests) becomes two lines per interval
    with a count, not one traceback per event.
    """

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self._logger = logger
        self._interval = interval
        self._suppressed: dict[str, tuple[int, str]] = {}

    def event(self, kind: str, message: str, level: int = logging.WARNING) -> None:
        if kind in self._suppressed:
            count, _ = self._suppressed[kind]
            self._suppressed[kind] = (count + 1, message)
            return
        self._logger.log(level, "%s", message)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a log record from another thread): no summary
            return
        self._suppressed[kind] = (0, message)
        loop.call_later(self._interval, self._report, kind, level)

    def _report(self, kind: str, level: int) -> None:
        count, last = self._suppressed.pop(kind, (0, ""))
        if count:
            self._logger.log(level, "%d more in the last %.0f s; the last: %s",
                             count, self._interval, last)
            # Still flooding: keep summarizing once per interval.
            self._suppressed[kind] = (0, last)
            asyncio.get_running_loop().call_later(self._interval, self._report, kind, level)


def is_resource_error(exc: object) -> bool:
    return isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS


def accept_backlog() -> int:
    """listen() backlog, which is also how many connections asyncio accepts in one go
    (each a descriptor before it can be refused): 1024, less under a small file limit.
    A small backlog drops SYNs in a connect storm, and a dropped SYN is retried after
    1, 3, 7, 15 s: 128 (aiohttp's default) left 10,000 sockets connecting for a minute."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(8, min(1024, soft // 16))


def default_max_connections(settings: Settings) -> int:
    """The connection cap below the file limit. Kept free: the pools, one accept batch,
    as many refusals still being read, and a reserve, so accept() never runs out."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    reserve = settings.db_pool_max + settings.redis_pool_size + _FD_RESERVE + 2 * accept_backlog()
    return max(16, soft - reserve)


@dataclass
class ConnectionGuard:
    """Counts open connections per address and in total; says when to refuse one."""

    per_address: int  # 0: no cap
    total: int
    exempt: frozenset[str] = frozenset()  # trusted proxies: many clients each
    linger_budget: int = 128  # refusals left open for their client to read the 503
    open: int = 0
    refused: int = 0
    lingering: int = 0

    def __post_init__(self) -> None:
        self._by_address: dict[str, int] = {}

    def admit(self, address: str) -> str | None:
        """Count the connection in and return None, or return why it is refused."""
        if self.open >= self.total:
            return "the server is at its connection limit"
        held = self._by_address.get(address, 0)
        if self.per_address and held >= self.per_address and address not in self.exempt:
            return "too many connections from this address"
        self._by_address[address] = held + 1
        self.open += 1
        return None

    def release(self, address: str) -> None:
        self.open -= 1
        held = self._by_address.pop(address, 1) - 1
        if held > 0:
            self._by_address[address] = held

    def held_by(self, address: str) -> int:
        return self._by_address.get(address, 0)


def _refusal(reason: str) -> bytes:
    body = dumps({"detail": reason, "code": "too_many_connections"})
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 5\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's connection handler with admission control and JSON parser errors."""

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, events: ThrottledLog,
                 **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._events = events
        self._admitted: str | None = None  # the address counted in, until the close
        self._refused = False
        self._lingering = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else "unknown"
        refusal = self._guard.admit(address)
        if refusal is None:
            self._admitted = address
            super().connection_made(transport)
            return
        self._refused = True
        self._guard.refused += 1
        self._events.event("refused", f"refused a connection from {address}: {refusal} "
                                      f"({self._guard.open} open)")
        # uvloop's transports are not asyncio.Transport subclasses: duck-typed.
        tcp = cast(asyncio.Transport, transport)
        tcp.write(_refusal(refusal))
        if self._guard.lingering >= self._guard.linger_budget or not tcp.can_write_eof():
            tcp.close()  # a flood: the descriptor matters more than the 503 reaching it
            return
        # Half-close: the client reads the 503 and closes; abort if it does not. (A
        # plain close with its request unread would send a reset that can destroy the
        # 503 before the client reads it.)
        self._guard.lingering += 1
        self._lingering = True
        tcp.write_eof()
        asyncio.get_running_loop().call_later(_REFUSAL_LINGER, tcp.abort)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            if self._lingering:
                self._lingering = False
                self._guard.lingering -= 1
            return
        if self._admitted is not None:
            self._guard.release(self._admitted)
            self._admitted = None
        super().connection_lost(exc)

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """Answer in the JSON error shape; never echo or log the request's bytes
        (the parser's message quotes the bad line, an Authorization header say)."""
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already started")
        if status >= 500:
            log.error("unhandled error answering %s %s: %s", request.method, request.path,
                      type(exc).__name__)
            detail, code = "internal error", "internal_error"
        else:
            name = type(exc).__name__
            detail, code = _PARSER_ERRORS.get(name, ("malformed HTTP request",
                                                     "malformed_request"))
            self._events.event("malformed", f"rejected a malformed request from "
                                            f"{request.remote}: {name}", logging.INFO)
        response = json_response({"detail": detail, "code": code}, status=status)
        response.force_close()
        return response


class GuardedSite(web.BaseSite):
    """A TCP site whose connections are GuardedRequestHandlers."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *,
                 guard: ConnectionGuard, events: ThrottledLog, handler_args: dict[str, Any],
                 backlog: int = 128) -> None:
        super().__init__(runner, backlog=backlog)
        self._host, self._port = host, port
        self._guard, self._events, self._handler_args = guard, events, handler_args

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    def _protocol(self) -> GuardedRequestHandler:
        server = self._runner.server
        assert server is not None
        return GuardedRequestHandler(server, loop=asyncio.get_running_loop(),
                                     guard=self._guard, events=self._events,
                                     **self._handler_args)

    async def start(self) -> None:
        await super().start()
        self._server = await asyncio.get_running_loop().create_server(
            self._protocol, self._host, self._port, backlog=self._backlog,
            reuse_address=True,
        )
        sock: socket.socket = self._server.sockets[0]
        self._port = sock.getsockname()[1]

    @property
    def port(self) -> int:
        return self._port


def raise_file_limit() -> int:
    """Raise the soft descriptor limit to the hard one; return the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def _install_loop_handler(events: ThrottledLog) -> None:
    """The accept loop reports EMFILE through the loop's exception handler: once per
    interval with a count, instead of once per failed accept() with a traceback."""
    loop = asyncio.get_running_loop()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if is_resource_error(exc):
            assert isinstance(exc, OSError)
            events.event("resource", f"out of a system resource: {exc.strerror} "
                                     f"({context.get('message', '')})")
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class _ResourceErrorFilter(logging.Filter):
    """Route aiohttp's per-connection resource-error tracebacks to the throttled log."""

    def __init__(self, events: ThrottledLog) -> None:
        super().__init__()
        self._events = events

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if is_resource_error(exc):
            assert isinstance(exc, OSError)
            self._events.event("resource", f"out of a system resource: {exc.strerror}")
            return False
        return True


async def start_listener(app: web.Application, settings: Settings,
                         access_log_class: Any = None) -> tuple[web.AppRunner, GuardedSite]:
    """Start the app behind a guarded site; the caller awaits runner.cleanup()."""
    events = ThrottledLog(logging.getLogger("fullon_gateway.serving"),
                          settings.resource_log_interval)
    _install_loop_handler(events)
    aiohttp_log = logging.getLogger("aiohttp.server")
    aiohttp_log.addFilter(_ResourceErrorFilter(events))
    handler_args: dict[str, Any] = {
        "keepalive_timeout": settings.keepalive_timeout,
        "lingering_time": min(_LINGERING_TIME, settings.body_timeout),
    }
    runner_args: dict[str, Any] = dict(handler_args)
    if access_log_class is not None:
        handler_args["access_log_class"] = access_log_class
        runner_args["access_log_class"] = access_log_class
    runner = web.AppRunner(app, shutdown_timeout=settings.grace_period, **runner_args)
    await runner.setup()
    total = settings.max_connections or default_max_connections(settings)
    backlog = accept_backlog()
    guard = ConnectionGuard(settings.max_connections_per_address, total,
                            exempt=settings.proxies, linger_budget=backlog)
    site = GuardedSite(runner, settings.host, settings.port, guard=guard, events=events,
                       handler_args=handler_args, backlog=backlog)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()  # the app started: close what it opened (busy port...)
        raise
    log.info("listening on http://%s:%d (connections: %d in total, %s per address)",
             settings.host, site.port, total, settings.max_connections_per_address or "no cap")
    return runner, site


async def serve(app: web.Application, settings: Settings, access_log_class: Any = None,
                on_ready: Callable[[int], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down within grace_period.
    ``on_ready(port)`` runs once the listener is bound."""
    limit = raise_file_limit()
    log.debug("file descriptor limit: %d", limit)
    runner, site = await start_listener(app, settings, access_log_class)
    if on_ready is not None:
        on_ready(site.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
