"""The auth middleware factory: identify the caller, then enforce the view's needs.

Credentials come from ``Authorization: Bearer <jwt or api key>`` or ``X-API-Key``.
A request with a bad credential is refused even on public views: a client that
sends a broken token should learn so instead of being treated as anonymous.
WebSocket upgrades authenticate inside the stream endpoint (query token or first
message), so the endpoint is declared public here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from fullon_gateway.auth.identity import CALLER, Caller, authorize, requirement_of
from fullon_gateway.auth.service import AuthFailure
from fullon_gateway.errors import Unauthorized
from fullon_gateway.keys import AUTH

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def credential_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'",
                               code="invalid_token")
        return value.strip()
    return request.headers.get("X-API-Key")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.http_exception is not None:
        return await handler(request)  # unknown route or method: 404/405 for everyone
    if isinstance(request.match_info.route.resource, web.StaticResource):
        return await handler(request)  # the dashboard's own script and style
    need = requirement_of(handler, request.method)
    credential = credential_of(request)
    caller: Caller | None = None
    if credential is not None:
        try:
            caller = await request.app[AUTH].authenticate(credential)
        except AuthFailure as exc:
            raise exc.http() from None
        request[CALLER] = caller
    authorize(caller, need)
    return await handler(request)
