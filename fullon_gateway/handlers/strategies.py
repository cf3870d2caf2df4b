"""/api/v1/orm/strategies: the strategy catalog and the strategies bots run."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fullon_gateway.auth.identity import caller_of, requires
from fullon_gateway.errors import Invalid
from fullon_gateway.handlers.common import load_json, path_int
from fullon_gateway.handlers.orm_base import ORM, check_owner, db_errors, load_query, not_found
from fullon_gateway.jsonutil import json_response, loads
from fullon_gateway.keys import DB
from fullon_gateway.openapi import doc
from fullon_gateway.pagination import Page, PageQuery
from fullon_gateway.schemas.projection import Projection
from fullon_gateway.schemas.strategies import (
    BotStrategyCreateSchema,
    BotStrategyListQuery,
    BotStrategyOut,
    BotStrategyUpdateSchema,
    CatStrategyCreateSchema,
    CatStrategyOut,
    check_params,
)
from fullon_gateway.store import bots as bots_db
from fullon_gateway.store import strategies as str_db
from fullon_gateway.store.conn import Conn

_cat = Projection(CatStrategyOut())
_cat_create = CatStrategyCreateSchema()
_page = PageQuery()
_out = Projection(BotStrategyOut())
_create = BotStrategyCreateSchema()
_update = BotStrategyUpdateSchema()
_list_q = BotStrategyListQuery()


async def _validate_params(db: Conn, cat_str_id: int, params: dict[str, Any] | None) -> None:
    if params is None:
        return
    cat = await str_db.catalog_by_id(db, cat_str_id)
    if cat is None:
        raise Invalid("no such catalog strategy", fields={"cat_str_id": ["no such strategy"]})
    errors = check_params(loads(cat["params"]), params)
    if errors:
        raise Invalid(f"invalid parameters for strategy {cat['name']}", fields=errors)


class StrategiesHandler:
    prefix = f"{ORM}/strategies"

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix
        return [
            web.get(f"{p}/catalog", self.list_catalog),
            web.post(f"{p}/catalog", self.create_catalog),
            web.get(f"{p}/catalog/{{cat_str_id}}", self.get_catalog),
            web.get(f"{p}/bot-strategies", self.list_bot_strategies),
            web.post(f"{p}/bot-strategies", self.create),
            web.get(f"{p}/bot-strategies/{{str_id}}", self.get),
            web.patch(f"{p}/bot-strategies/{{str_id}}", self.update),
            web.delete(f"{p}/bot-strategies/{{str_id}}", self.delete),
        ]

    @doc(query=PageQuery, response=CatStrategyOut, paged=True)
    async def list_catalog(self, request: web.Request) -> web.Response:
        """Strategies the platform can run, with their parameter definitions."""
        page = Page.from_query("cat_strategies", load_query(request, _page))
        rows = await str_db.list_catalog(request.app[DB], page.after, page.limit)
        return json_response(page.body(rows, "cat_str_id", _cat.dump_many))

    @requires("admin")
    @doc(body=CatStrategyCreateSchema, response=CatStrategyOut, status=201)
    async def create_catalog(self, request: web.Request) -> web.Response:
        """Add a strategy to the catalog (admin)."""
        data = await load_json(request, _cat_create)
        with db_errors("strategy"):
            row = await str_db.create_catalog(request.app[DB], data)
        return json_response(_cat.dump(row), status=201)

    @doc(response=CatStrategyOut)
    async def get_catalog(self, request: web.Request) -> web.Response:
        """One catalog strategy."""
        row = await str_db.catalog_by_id(request.app[DB], path_int(request, "cat_str_id"))
        if row is None:
            raise not_found("strategy")
        return json_response(_cat.dump(row))

    @doc(query=BotStrategyListQuery, response=BotStrategyOut, paged=True)
    async def list_bot_strategies(self, request: web.Request) -> web.Response:
        """Strategies of the caller's bots (all bots for an admin), by bot or catalog entry."""
        q = load_query(request, _list_q)
        page = Page.from_query("bot_strategies", q)
        rows = await str_db.list_bot_strategies(
            request.app[DB], caller_of(request), q, page.after, page.limit
        )
        return json_response(page.body(rows, "str_id", _out.dump_many))

    @doc(body=BotStrategyCreateSchema, response=BotStrategyOut, status=201)
    async def create(self, request: web.Request) -> web.Response:
        """Attach a catalog strategy to one of the caller's bots, with size and parameters."""
        data = await load_json(request, _create)
        db = request.app[DB]
        owner = await bots_db.owner_of(db, data["bot_id"])
        if owner is None or not caller_of(request).can_see(owner):
            raise Invalid("no such bot", fields={"bot_id": ["no such bot"]})
        await _validate_params(db, data["cat_str_id"], data["params"])
        with db_errors("bot strategy"):
            row = await str_db.create(db, data)
        return json_response(_out.dump(row), status=201)

    async def _owned(self, request: web.Request) -> Any:
        row = await str_db.by_id(request.app[DB], path_int(request, "str_id"))
        return check_owner(row, caller_of(request), "bot_strategy")

    @doc(response=BotStrategyOut)
    async def get(self, request: web.Request) -> web.Response:
        """One bot strategy."""
        return json_response(_out.dump(await self._owned(request)))

    @doc(body=BotStrategyUpdateSchema, response=BotStrategyOut)
    async def update(self, request: web.Request) -> web.Response:
        """Change a bot strategy's size, leverage or parameters."""
        data = await load_json(request, _update)
        row = await self._owned(request)
        db = request.app[DB]
        await _validate_params(db, row["cat_str_id"], data.get("params"))
        with db_errors("bot strategy"):
            row = await str_db.update(db, row["str_id"], data)
        if row is None:
            raise not_found("bot_strategy")
        return json_response(_out.dump(row))

    @doc(status=204)
    async def delete(self, request: web.Request) -> web.Response:
        """Detach a strategy from its bot."""
        row = await self._owned(request)
        await str_db.delete(request.app[DB], row["str_id"])
        return web.Response(status=204)
