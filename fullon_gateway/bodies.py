"""Request bodies: read in full, under a deadline, before any handler runs.

aiohttp waits for a body for as long as the client keeps its connection open, so a
client sending one byte every few seconds holds a handler and a descriptor forever.
This middleware reads the body first (aiohttp's ``client_max_size`` still applies;
handlers then get the cached copy from ``request.read()``/``json()``/``post()``):

- slower than ``body_timeout`` in total: 408 ``body_timeout``;
- the client goes away mid-body: nobody can hear an answer, so it is a 499
  ``client_closed_request`` in the metrics and a DEBUG line, never a 503
  ``dependency_unavailable`` (which would page an operator);
- the server is shutting down: a body still arriving near the end of ``grace_period``
  gets a 503 ``shutting_down`` (with Retry-After) instead of a silent reset.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from fullon_gateway.errors import ApiError, BadRequest, ClientGone, client_gone
from fullon_gateway.keys import DRAINING, SETTINGS

log = logging.getLogger(__name__)

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class BodyTimeout(ApiError):
    status, code, detail = 408, "body_timeout", "the request body did not arrive in time"
    close_connection = True


class ShuttingDown(ApiError):
    status, code, detail = 503, "shutting_down", "the server is restarting; retry"
    close_connection = True

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


def _answer_margin(grace: float) -> float:
    """How long before the grace deadline a half-sent body is answered: enough to
    write the 503 before aiohttp closes what is still open."""
    return min(1.0, grace * 0.2)


async def _read(request: web.Request) -> None:
    try:
        if request.content_type in _FORMS:
            # post() caches the parsed form (a multipart body cannot be re-read).
            await request.post()
        else:
            await request.read()
    except (ValueError, AssertionError, KeyError) as exc:
        # e.g. multipart/form-data without a boundary, a form that is not UTF-8
        raise BadRequest(f"malformed form body: {exc}", code="malformed_form") from None
    except (ConnectionError, web.RequestPayloadError) as exc:
        if isinstance(exc, ConnectionError) or client_gone(request):
            raise ClientGone() from None
        # A malformed chunked or compressed body from a client still listening.
        raise BadRequest("malformed request body", code="malformed_body") from None


@web.middleware
async def body_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.body_exists or request.content.is_eof():
        # No body, or all of it already arrived with the headers (the usual case):
        # nothing can stall, so no timer and no extra task.
        if request.body_exists:
            await _read(request)
        return await handler(request)
    settings = request.app[SETTINGS]
    timeout = settings.body_timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    reading = asyncio.ensure_future(_read(request))
    draining = asyncio.ensure_future(request.app[DRAINING].wait())
    try:
        done, _ = await asyncio.wait({reading, draining}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if reading not in done and draining in done:
            # Shutting down: the body may still finish within the grace period.
            grace = settings.grace_period
            left = min(deadline, loop.time() + grace - _answer_margin(grace))
            done, _ = await asyncio.wait({reading}, timeout=max(0.0, left - loop.time()))
            if reading not in done:
                raise ShuttingDown()
        if reading not in done:
            raise BodyTimeout()
        reading.result()
    finally:
        for task in (reading, draining):
            task.cancel()
    return await handler(request)


def setup_bodies(app: web.Application) -> None:
    """Give the app its draining event; shutdown sets it first."""
    app[DRAINING] = asyncio.Event()

    async def start_draining(app: web.Application) -> None:
        app[DRAINING].set()

    app.on_shutdown.insert(0, start_draining)
