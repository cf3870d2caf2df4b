"""Error types and the one middleware that turns every failure into JSON.

Handlers raise ApiError subclasses; the middleware renders them as
``{"detail", "code"}`` (plus ``fields`` for 422) with the right status. Anything
unexpected is logged with its traceback and answered with a plain 500: the client
never sees a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import marshmallow
import redis.exceptions
from aiohttp import web

from fullon_gateway.jsonutil import json_response

log = logging.getLogger(__name__)


class ApiError(Exception):
    status = 500
    code = "internal_error"
    detail = "internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.detail)
        self.detail = detail or self.detail
        self.code = code or self.code
        self.fields = fields
        self.headers = headers or {}

    # Close the connection after the answer (the request left unread bytes behind).
    close_connection = False

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail, "code": self.code}
        if self.fields:
            body["fields"] = self.fields
        return body


class BadRequest(ApiError):
    status, code, detail = 400, "bad_request", "bad request"


class Unauthorized(ApiError):
    status, code, detail = 401, "not_authenticated", "authentication required"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class Forbidden(ApiError):
    status, code, detail = 403, "forbidden", "not allowed"


class NotFound(ApiError):
    status, code, detail = 404, "not_found", "not found"


class Conflict(ApiError):
    status, code, detail = 409, "conflict", "conflict"


class PayloadTooLarge(ApiError):
    status, code, detail = 413, "payload_too_large", "request body too large"


class Invalid(ApiError):
    status, code, detail = 422, "validation_error", "invalid input"


class RateLimited(ApiError):
    status, code, detail = 429, "rate_limited", "too many requests"

    def __init__(self, retry_after: int, detail: str | None = None, **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.retry_after = max(1, int(retry_after))
        self.headers["Retry-After"] = str(self.retry_after)


class Unavailable(ApiError):
    status, code, detail = 503, "dependency_unavailable", "a dependency is unavailable"


class ClientGone(ApiError):
    """The client closed its connection before the answer: nobody hears it, and it is
    not the server's fault. 499 is what proxies log for this (nginx's convention)."""

    status, code, detail = 499, "client_closed_request", "the client closed the connection"


def invalid_from_marshmallow(exc: marshmallow.ValidationError) -> Invalid:
    """Flatten marshmallow's nested messages into ``{"field": ["why"]}``."""
    fields: dict[str, list[str]] = {}

    def walk(prefix: str, messages: Any) -> None:
        if isinstance(messages, dict):
            for key, value in messages.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
            fields.setdefault(prefix or "_schema", []).extend(messages)
        elif isinstance(messages, list):
            for item in messages:
                walk(prefix, item)
        else:
            fields.setdefault(prefix or "_schema", []).append(str(messages))

    walk("", exc.messages)
    names = ", ".join(sorted(fields))
    return Invalid(f"invalid input: {names}", fields=fields)


_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _render(status: int, body: dict[str, Any], headers: dict[str, str]) -> web.Response:
    return json_response(body, status=status, headers=headers)


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        if isinstance(exc, ClientGone):
            log.debug("client went away during %s %s", request.method, request.path)
        response = _render(exc.status, exc.body(), exc.headers)
        if exc.close_connection:
            response.force_close()
        return response
    except marshmallow.ValidationError as exc:
        invalid = invalid_from_marshmallow(exc)
        return _render(invalid.status, invalid.body(), {})
    except web.HTTPRequestEntityTooLarge:
        too_large = PayloadTooLarge()
        return _render(too_large.status, too_large.body(), {})
    except web.HTTPMethodNotAllowed as exc:
        # OPTIONS is answered on every route (no credentials needed: it tells only
        # which methods exist), and every Allow names it.
        allow = ", ".join(sorted(set(exc.allowed_methods) | {"OPTIONS"}))
        if request.method == "OPTIONS":
            return web.Response(status=204, headers={"Allow": allow})
        body = {"detail": "method not allowed", "code": "method_not_allowed"}
        return _render(405, body, {"Allow": allow})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        detail = exc.reason.lower() if exc.reason else code.replace("_", " ")
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow"}}
        return _render(exc.status, {"detail": detail, "code": code}, headers)
    except asyncpg.exceptions.CharacterNotInRepertoireError:
        # Client text Postgres cannot store (a NUL character) is bad input, not a bug.
        bad_text = Invalid("text must not contain NUL characters", code="invalid_text")
        return _render(bad_text.status, bad_text.body(), {})
    except asyncpg.exceptions.DataError as exc:
        # A value the column type cannot hold (an id past 2**31 from a forged cursor,
        # say): the client's input, so a 422, not a 500 with a logged traceback.
        log.info("rejected a value Postgres cannot store on %s %s: %s",
                 request.method, request.path, type(exc).__name__)
        bad_value = Invalid("a value is out of range or of the wrong form", code="invalid_value")
        return _render(bad_value.status, bad_value.body(), {})
    except (
        TimeoutError,
        OSError,
        asyncpg.exceptions.InterfaceError,
        asyncpg.exceptions.CannotConnectNowError,
        # The server went away mid-query (terminated backend, restart, crash).
        asyncpg.exceptions.PostgresConnectionError,
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.CrashShutdownError,
        asyncpg.exceptions.TooManyConnectionsError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
    ) as exc:
        if isinstance(exc, ConnectionError) and client_gone(request):
            # The client's own connection broke (a write to it, a body read): not a
            # dependency failure, and nobody is left to answer.
            log.debug("client went away during %s %s", request.method, request.path)
            gone = ClientGone()
            return _render(gone.status, gone.body(), {})
        log.warning("dependency failure on %s %s: %r", request.method, request.path, exc)
        down = Unavailable()
        return _render(down.status, down.body(), {"Retry-After": "5"})
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _render(500, {"detail": "internal error", "code": "internal_error"}, {})
