"""/api/v1/orm/symbols: list, search, and (admin) maintain tradable symbols."""

from __future__ import annotations

from aiohttp import web

from fullon_gateway.auth.identity import requires
from fullon_gateway.errors import Invalid
from fullon_gateway.handlers.common import load_json, path_int
from fullon_gateway.handlers.orm_base import ORM, db_errors, load_query, not_found
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import DB
from fullon_gateway.openapi import doc
from fullon_gateway.pagination import Page
from fullon_gateway.schemas.projection import Projection
from fullon_gateway.schemas.symbols import (
    SymbolCreateSchema,
    SymbolListQuery,
    SymbolOut,
    SymbolSearchQuery,
    SymbolUpdateSchema,
)
from fullon_gateway.store import exchanges as ex_db
from fullon_gateway.store import symbols as sym_db

_out = Projection(SymbolOut())
_list_q = SymbolListQuery()
_search_q = SymbolSearchQuery()
_create = SymbolCreateSchema()
_update = SymbolUpdateSchema()


class SymbolsHandler:
    prefix = f"{ORM}/symbols"

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix
        return [
            web.get(p, self.list_symbols),
            web.post(p, self.create),
            web.get(f"{p}/search", self.search),
            web.get(f"{p}/{{symbol_id}}", self.get),
            web.patch(f"{p}/{{symbol_id}}", self.update),
            web.delete(f"{p}/{{symbol_id}}", self.delete),
        ]

    @doc(query=SymbolListQuery, response=SymbolOut, paged=True)
    async def list_symbols(self, request: web.Request) -> web.Response:
        """Symbols, filtered by exchange, base, quote, futures or active."""
        q = load_query(request, _list_q)
        page = Page.from_query("symbols", q)
        rows = await sym_db.list_symbols(request.app[DB], q, page.after, page.limit)
        return json_response(page.body(rows, "symbol_id", _out.dump_many))

    @doc(query=SymbolSearchQuery, response=SymbolOut, paged=True)
    async def search(self, request: web.Request) -> web.Response:
        """Symbols whose name contains ``q`` (case-insensitive)."""
        q = load_query(request, _search_q)
        page = Page.from_query("symbol_search", q)
        rows = await sym_db.search(request.app[DB], q, page.after, page.limit)
        return json_response(page.body(rows, "symbol_id", _out.dump_many))

    @doc(response=SymbolOut)
    async def get(self, request: web.Request) -> web.Response:
        """One symbol."""
        row = await sym_db.by_id(request.app[DB], path_int(request, "symbol_id"))
        if row is None:
            raise not_found("symbol")
        return json_response(_out.dump(row))

    @requires("admin")
    @doc(body=SymbolCreateSchema, response=SymbolOut, status=201)
    async def create(self, request: web.Request) -> web.Response:
        """Add a symbol to a catalog exchange (admin)."""
        data = await load_json(request, _create)
        db = request.app[DB]
        if await ex_db.catalog_by_id(db, data["cat_ex_id"]) is None:
            raise Invalid(
                "no such catalog exchange", fields={"cat_ex_id": ["no such catalog exchange"]}
            )
        with db_errors("symbol"):
            row = await sym_db.create(db, data)
        return json_response(_out.dump(row), status=201)

    @requires("admin")
    @doc(body=SymbolUpdateSchema, response=SymbolOut)
    async def update(self, request: web.Request) -> web.Response:
        """Change a symbol's parameters (admin)."""
        symbol_id = path_int(request, "symbol_id")
        data = await load_json(request, _update)
        with db_errors("symbol"):
            row = await sym_db.update(request.app[DB], symbol_id, data)
        if row is None:
            raise not_found("symbol")
        return json_response(_out.dump(row))

    @requires("admin")
    @doc(status=204)
    async def delete(self, request: web.Request) -> web.Response:
        """Delete a symbol (admin); refused (409) while a bot feed uses it."""
        with db_errors("symbol"):
            deleted = await sym_db.delete(request.app[DB], path_int(request, "symbol_id"))
        if not deleted:
            raise not_found("symbol")
        return web.Response(status=204)
