"""The caller of a request, and how handlers declare what they need.

The auth middleware only identifies the caller; authorization is declared on each
view with these decorators and checked before the view runs. Deny by default: a
view without a declaration needs an authenticated caller holding ``read`` (safe
methods) or ``trade`` (anything that changes state).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

from fullon_gateway.errors import Forbidden, Unauthorized

SCOPES = ("read", "trade", "ingest", "admin")
USER_SCOPES = frozenset({"read", "trade"})
ADMIN_SCOPES = frozenset(SCOPES)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Caller:
    user_id: int
    email: str
    name: str
    role: str
    scopes: frozenset[str]
    kind: str  # "jwt" or "api_key"
    session_id: uuid.UUID | None = None
    api_key_id: int | None = None
    expires_at: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_see(self, owner_id: int) -> bool:
        return self.is_admin or owner_id == self.user_id


# Typed request key (aiohttp 3.14 warns on string keys, and warnings are errors in tests).
CALLER = web.RequestKey("fullon_caller", Caller)


@dataclass(frozen=True)
class Requirement:
    public: bool = False
    scope: str | None = None
    jwt_only: bool = False


_ATTR = "__fullon_requirement__"


def public(view: F) -> F:
    """Anyone may call this view, authenticated or not."""
    setattr(view, _ATTR, Requirement(public=True))
    return view


def requires(scope: str, *, jwt_only: bool = False) -> Callable[[F], F]:
    """The caller needs ``scope`` (and with jwt_only, a logged-in session, not a key)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    def mark(view: F) -> F:
        setattr(view, _ATTR, Requirement(scope=scope, jwt_only=jwt_only))
        return view

    return mark


def requirement_of(view: Any, method: str) -> Requirement:
    declared = getattr(view, _ATTR, None)
    if declared is not None:
        return declared
    return Requirement(scope="read" if method in SAFE_METHODS else "trade")


def authorize(caller: Caller | None, need: Requirement) -> None:
    if need.public:
        return
    if caller is None:
        raise Unauthorized()
    if need.jwt_only and caller.kind != "jwt":
        raise Forbidden("this action needs a logged-in session, not an API key",
                        code="session_required")
    if need.scope and need.scope not in caller.scopes:
        raise Forbidden(f"this action needs the {need.scope!r} scope", code="insufficient_scope")


def caller_of(request: web.Request) -> Caller:
    caller = request.get(CALLER)
    if caller is None:  # only reachable if a public view asks; a bug, not a client error
        raise Unauthorized()
    return caller


def optional_caller(request: web.Request) -> Caller | None:
    return request.get(CALLER)
