"""/api/v1/orm/api_keys: create (shown once), list, deactivate, delete."""

from __future__ import annotations

from aiohttp import web

from fullon_gateway.auth.identity import caller_of, requires
from fullon_gateway.handlers.common import load_json, path_int
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import AUTH, DB
from fullon_gateway.pagination import Page, PageQuery
from fullon_gateway.schemas.auth import ApiKeyCreatedOut, ApiKeyCreateSchema, ApiKeyOut
from fullon_gateway.schemas.projection import Projection
from fullon_gateway.store import api_keys as keys_db

_create = ApiKeyCreateSchema()
_page = PageQuery()
_out = Projection(ApiKeyOut())
_created = ApiKeyCreatedOut()


class ApiKeysHandler:
    prefix = "/api/v1/orm/api_keys"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{self.prefix}/me", self.create),
            web.get(f"{self.prefix}/me", self.list_mine),
            web.patch(f"{self.prefix}/{{key_id}}/deactivate", self.deactivate),
            web.delete(f"{self.prefix}/{{key_id}}", self.delete),
        ]

    # Keys are managed from a logged-in session only: a leaked key must not be able
    # to mint itself successors.
    @requires("read", jwt_only=True)
    async def create(self, request: web.Request) -> web.Response:
        """Create a key for the caller; the key itself is in this answer and never again."""
        data = await load_json(request, _create)
        created = await request.app[AUTH].create_api_key(
            caller_of(request), data["name"], data["scopes"], data["expires_at"]
        )
        return json_response(_created.dump(created), status=201)

    @requires("read")
    async def list_mine(self, request: web.Request) -> web.Response:
        """The caller's keys, without the keys themselves."""
        page = Page.from_query("api_keys", _page.load(request.query))
        rows = await keys_db.list_for_user(
            request.app[DB], caller_of(request).user_id, page.after, page.limit
        )
        return json_response(page.body(rows, "key_id", _out.dump_many))

    @requires("read", jwt_only=True)
    async def deactivate(self, request: web.Request) -> web.Response:
        """Stop a key from working, keeping its record."""
        row = await request.app[AUTH].deactivate_api_key(
            caller_of(request), path_int(request, "key_id")
        )
        return json_response(_out.dump(row))

    @requires("read", jwt_only=True)
    async def delete(self, request: web.Request) -> web.Response:
        """Delete a key for good."""
        await request.app[AUTH].delete_api_key(caller_of(request), path_int(request, "key_id"))
        return web.Response(status=204)
