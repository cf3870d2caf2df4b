"""/api/v1/orm/users: the caller's profile, and user management for admins."""

from __future__ import annotations

from aiohttp import web

from fullon_gateway.auth.identity import caller_of, requires
from fullon_gateway.auth.revocation import Revocation
from fullon_gateway.errors import Conflict
from fullon_gateway.handlers.common import load_json, path_int
from fullon_gateway.handlers.orm_base import ORM, load_query, not_found
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import AUTH, DB
from fullon_gateway.openapi import doc
from fullon_gateway.pagination import Page
from fullon_gateway.schemas.projection import Projection
from fullon_gateway.schemas.users import (
    MeOut,
    MeUpdateSchema,
    UserCreateSchema,
    UserListQuery,
    UserOut,
    UserUpdateSchema,
)
from fullon_gateway.store import sessions as sessions_db
from fullon_gateway.store import users as users_db

_user = Projection(UserOut())
_me = Projection(MeOut())
_list_query = UserListQuery()
_create = UserCreateSchema()
_update = UserUpdateSchema()
_me_update = MeUpdateSchema()


class UsersHandler:
    prefix = f"{ORM}/users"

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix
        return [
            web.get(f"{p}/me", self.me),
            web.patch(f"{p}/me", self.update_me),
            web.get(p, self.list_users),
            web.post(p, self.create_user),
            web.get(f"{p}/{{user_id}}", self.get_user),
            web.patch(f"{p}/{{user_id}}", self.update_user),
            web.delete(f"{p}/{{user_id}}", self.delete_user),
        ]

    @doc(response=MeOut)
    async def me(self, request: web.Request) -> web.Response:
        """The caller's own profile.

        Answered from the authenticated identity, which the auth layer keeps in its
        process cache: no database round trip.
        """
        c = caller_of(request)
        return json_response(
            _me.dump(
                {
                    "user_id": c.user_id,
                    "email": c.email,
                    "name": c.name,
                    "role": c.role,
                    "is_active": True,
                    "auth": c.kind,
                    "scopes": sorted(c.scopes),
                }
            )
        )

    @doc(body=MeUpdateSchema, response=UserOut)
    async def update_me(self, request: web.Request) -> web.Response:
        """Change the caller's display name."""
        data = await load_json(request, _me_update)
        caller = caller_of(request)
        row = await users_db.update_user(request.app[DB], caller.user_id, data)
        if row is None:
            raise not_found("user")
        # The cached name is stale; access did not change, so sockets stay open.
        await request.app[AUTH].announce(Revocation.USER_CHANGED, caller.user_id)
        return json_response(_user.dump(row))

    @requires("admin")
    @doc(query=UserListQuery, response=UserOut, paged=True)
    async def list_users(self, request: web.Request) -> web.Response:
        """Every user (admin), filtered by role, active flag or a name/email substring."""
        q = load_query(request, _list_query)
        page = Page.from_query("users", q)
        rows = await users_db.list_users(
            request.app[DB],
            role=q.get("role"),
            is_active=q.get("is_active"),
            q=q.get("q"),
            after=page.after,
            limit=page.limit,
        )
        return json_response(page.body(rows, "user_id", _user.dump_many))

    @requires("admin")
    @doc(body=UserCreateSchema, response=UserOut, status=201)
    async def create_user(self, request: web.Request) -> web.Response:
        """Create a user (admin)."""
        data = await load_json(request, _create)
        row = await request.app[AUTH].create_user(
            data["email"], data["password"], data["name"], data["role"]
        )
        return json_response(_user.dump(row), status=201)

    @requires("admin")
    @doc(response=UserOut)
    async def get_user(self, request: web.Request) -> web.Response:
        """One user (admin)."""
        row = await users_db.by_id(request.app[DB], path_int(request, "user_id"))
        if row is None:
            raise not_found("user")
        return json_response(_user.dump(row))

    @requires("admin")
    @doc(body=UserUpdateSchema, response=UserOut)
    async def update_user(self, request: web.Request) -> web.Response:
        """Rename, change the role of, disable or re-enable a user (admin).

        A disabled user's sessions, keys and sockets stop working at once, in every
        gateway process. Admins cannot disable or demote themselves (lock-out guard).
        """
        user_id = path_int(request, "user_id")
        data = await load_json(request, _update)
        caller = caller_of(request)
        if user_id == caller.user_id and (
            data.get("is_active") is False or data.get("role", "admin") != "admin"
        ):
            raise Conflict(
                "you cannot disable or demote your own account", code="cannot_change_self"
            )
        async with request.app[DB].acquire() as conn, conn.transaction():
            row = await users_db.update_user(conn, user_id, data)
            if row is not None and data.get("is_active") is False:
                # Disabling ends their sessions: re-enabling must not revive old tokens.
                await sessions_db.revoke_user_sessions(conn, user_id, "user disabled")
        if row is None:
            raise not_found("user")
        if data.get("is_active") is False:
            kind = Revocation.USER  # disabled: everything of theirs stops now
        elif data.get("role") == "user":
            kind = Revocation.USER_ROLE  # possibly demoted: reconnect with today's rights
        else:
            kind = Revocation.USER_CHANGED
        await request.app[AUTH].announce(kind, user_id)
        return json_response(_user.dump(row))

    @requires("admin")
    @doc(status=204)
    async def delete_user(self, request: web.Request) -> web.Response:
        """Delete a user and everything they own (admin)."""
        user_id = path_int(request, "user_id")
        if user_id == caller_of(request).user_id:
            raise Conflict("you cannot delete your own account", code="cannot_change_self")
        if not await users_db.delete_user(request.app[DB], user_id):
            raise not_found("user")
        await request.app[AUTH].announce(Revocation.USER, user_id)
        return web.Response(status=204)
