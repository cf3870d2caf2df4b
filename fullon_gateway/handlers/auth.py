"""/api/v1/auth: login, refresh, logout, verify."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from fullon_gateway.auth.identity import caller_of, public, requires
from fullon_gateway.errors import BadRequest
from fullon_gateway.handlers.common import load_json
from fullon_gateway.jsonutil import iso, json_response
from fullon_gateway.keys import AUTH, SETTINGS
from fullon_gateway.openapi import doc
from fullon_gateway.schemas.auth import LoginSchema, RefreshSchema, TokenPairOut, VerifyOut

_login = LoginSchema()
_refresh = RefreshSchema()
_pair = TokenPairOut()


def client_address(request: web.Request) -> str:
    """The peer address, or behind a trusted proxy the client it names: the rightmost
    X-Forwarded-For entry that is not itself a trusted proxy (entries further left
    were written by the client and prove nothing)."""
    peer = request.remote or "unknown"
    proxies = request.app[SETTINGS].proxies
    if peer not in proxies:
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed(hops):
        if hop and hop not in proxies:
            return hop[:64]
    return peer


class AuthHandler:
    prefix = "/api/v1/auth"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{self.prefix}/login", self.login),
            web.post(f"{self.prefix}/refresh", self.refresh),
            web.post(f"{self.prefix}/logout", self.logout),
            web.get(f"{self.prefix}/verify", self.verify),
        ]

    @public
    @doc(body=LoginSchema, response=TokenPairOut, form=True, errors={
        401: "wrong email, username or password, or a disabled account",
        429: "too many failed logins for this account (Retry-After says when to retry)"})
    async def login(self, request: web.Request) -> web.Response:
        """Exchange email (or username) and password for an access and refresh token."""
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            try:
                form = await request.post()
            except (ValueError, AssertionError, KeyError) as exc:
                # e.g. multipart/form-data without a boundary
                raise BadRequest(f"malformed form body: {exc}", code="malformed_form") from None
            data = _login.load({k: v for k, v in form.items() if isinstance(v, str)})
        else:
            data = await load_json(request, _login)
        identity = (data.get("email") or data.get("username")).strip()
        result = await request.app[AUTH].login(
            identity, data["password"], client_address(request), request.headers.get("User-Agent")
        )
        return json_response(_pair.dump(result))

    @public
    @doc(body=RefreshSchema, response=TokenPairOut,
         errors={401: "the refresh token is invalid, expired, used or revoked"})
    async def refresh(self, request: web.Request) -> web.Response:
        """Trade a refresh token for a new pair; the presented token is retired."""
        data = await load_json(request, _refresh)
        return json_response(_pair.dump(await request.app[AUTH].refresh(data["refresh_token"])))

    @requires("read", jwt_only=True)
    async def logout(self, request: web.Request) -> web.Response:
        """Revoke the caller's session: refresh tokens die and its sockets close."""
        caller = caller_of(request)
        assert caller.session_id is not None
        await request.app[AUTH].revoke_session(caller.session_id, "logout")
        return json_response({"success": True, "detail": "session revoked"})

    @requires("read")
    @doc(response=VerifyOut)
    async def verify(self, request: web.Request) -> web.Response:
        """Who the presented credential belongs to, and until when it is good."""
        caller = caller_of(request)
        expires = None
        if caller.expires_at is not None:
            expires = iso(dt.datetime.fromtimestamp(caller.expires_at, dt.UTC))
        return json_response({
            "user_id": caller.user_id,
            "username": caller.email,
            "email": caller.email,
            "name": caller.name,
            "role": caller.role,
            "is_active": True,
            "expires_at": expires,
            "auth_type": caller.kind,
            "scopes": sorted(caller.scopes),
        })
