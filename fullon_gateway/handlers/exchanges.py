"""/api/v1/orm/exchanges: the exchange catalog and the caller's exchange accounts.

API credentials are write-only. They are stored only encrypted (Fernet, with the
deployment's ``exchange_secrets_key``); a deployment without a key refuses them
rather than keep secrets in the clear.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from cryptography.fernet import Fernet

from fullon_gateway.auth.identity import caller_of, requires
from fullon_gateway.auth.revocation import Revocation
from fullon_gateway.errors import Invalid
from fullon_gateway.handlers.common import load_json, path_int
from fullon_gateway.handlers.orm_base import ORM, check_owner, db_errors, load_query, not_found
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import AUTH, DB, SETTINGS
from fullon_gateway.openapi import doc
from fullon_gateway.pagination import Page, PageQuery
from fullon_gateway.schemas.exchanges import (
    CatExchangeCreateSchema,
    CatExchangeOut,
    ExchangeCreateSchema,
    ExchangeListQuery,
    ExchangeOut,
    ExchangeUpdateSchema,
)
from fullon_gateway.schemas.projection import Projection
from fullon_gateway.schemas.symbols import CatalogSymbolsQuery, SymbolOut
from fullon_gateway.store import exchanges as ex_db
from fullon_gateway.store import symbols as sym_db

_cat = Projection(CatExchangeOut())
_cat_create = CatExchangeCreateSchema()
_ex = Projection(ExchangeOut())
_ex_create = ExchangeCreateSchema()
_ex_update = ExchangeUpdateSchema()
_ex_query = ExchangeListQuery()
_page = PageQuery()
_sym = Projection(SymbolOut())
_sym_query = CatalogSymbolsQuery()


def _encrypt_credentials(request: web.Request, data: dict[str, Any]) -> dict[str, Any]:
    """Replace api_key/api_secret by their ciphertexts, or refuse them without a key."""
    if "api_key" not in data:
        return data
    key = request.app[SETTINGS].exchange_secrets_key
    if not key:
        why = ["this deployment stores no exchange credentials (no exchange_secrets_key set)"]
        raise Invalid(
            "exchange credentials are not accepted by this deployment",
            code="credentials_not_accepted",
            fields={"api_key": why, "api_secret": why},
        )
    box = Fernet(key)
    data = dict(data)
    data["api_key_enc"] = box.encrypt(data.pop("api_key").encode())
    data["api_secret_enc"] = box.encrypt(data.pop("api_secret").encode())
    return data


class ExchangesHandler:
    prefix = f"{ORM}/exchanges"

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix
        return [
            web.get(f"{p}/catalog", self.list_catalog),
            web.post(f"{p}/catalog", self.create_catalog),
            web.get(f"{p}/catalog/{{cat_ex_id}}", self.get_catalog),
            web.get(f"{p}/catalog/{{cat_ex_id}}/symbols", self.catalog_symbols),
            web.get(f"{p}/user-exchanges", self.list_accounts),
            web.post(f"{p}/user-exchanges", self.create_account),
            web.get(f"{p}/user-exchanges/{{ex_id}}", self.get_account),
            web.patch(f"{p}/user-exchanges/{{ex_id}}", self.update_account),
            web.delete(f"{p}/user-exchanges/{{ex_id}}", self.delete_account),
        ]

    @doc(query=PageQuery, response=CatExchangeOut, paged=True)
    async def list_catalog(self, request: web.Request) -> web.Response:
        """Exchanges the platform can trade on."""
        page = Page.from_query("cat_exchanges", load_query(request, _page))
        rows = await ex_db.list_catalog(request.app[DB], page.after, page.limit)
        return json_response(page.body(rows, "cat_ex_id", _cat.dump_many))

    @requires("admin")
    @doc(body=CatExchangeCreateSchema, response=CatExchangeOut, status=201)
    async def create_catalog(self, request: web.Request) -> web.Response:
        """Add an exchange to the catalog (admin)."""
        data = await load_json(request, _cat_create)
        with db_errors("catalog exchange"):
            row = await ex_db.create_catalog(
                request.app[DB], data["name"], data["ohlcv_view"], data["params"]
            )
        return json_response(_cat.dump(row), status=201)

    @doc(response=CatExchangeOut)
    async def get_catalog(self, request: web.Request) -> web.Response:
        """One catalog exchange."""
        row = await ex_db.catalog_by_id(request.app[DB], path_int(request, "cat_ex_id"))
        if row is None:
            raise not_found("catalog_exchange")
        return json_response(_cat.dump(row))

    @doc(query=CatalogSymbolsQuery, response=SymbolOut, paged=True)
    async def catalog_symbols(self, request: web.Request) -> web.Response:
        """Symbols tradable on one catalog exchange."""
        cat_ex_id = path_int(request, "cat_ex_id")
        db = request.app[DB]
        if await ex_db.catalog_by_id(db, cat_ex_id) is None:
            raise not_found("catalog_exchange")
        q = load_query(request, _sym_query)
        q["cat_ex_id"] = cat_ex_id
        page = Page.from_query("symbols", q)
        rows = await sym_db.list_symbols(db, q, page.after, page.limit)
        return json_response(page.body(rows, "symbol_id", _sym.dump_many))

    @doc(query=ExchangeListQuery, response=ExchangeOut, paged=True)
    async def list_accounts(self, request: web.Request) -> web.Response:
        """The caller's exchange accounts (an admin sees all, or one user's with user_id)."""
        q = load_query(request, _ex_query)
        page = Page.from_query("exchanges", q)
        rows = await ex_db.list_accounts(
            request.app[DB],
            caller_of(request),
            user_id=q.get("user_id"),
            cat_ex_id=q.get("cat_ex_id"),
            active=q.get("active"),
            after=page.after,
            limit=page.limit,
        )
        return json_response(page.body(rows, "ex_id", _ex.dump_many))

    @doc(body=ExchangeCreateSchema, response=ExchangeOut, status=201)
    async def create_account(self, request: web.Request) -> web.Response:
        """Add an exchange account for the caller (credentials optional, write-only)."""
        data = _encrypt_credentials(request, await load_json(request, _ex_create))
        caller = caller_of(request)
        db = request.app[DB]
        if await ex_db.catalog_by_id(db, data["cat_ex_id"]) is None:
            raise Invalid(
                "no such catalog exchange", fields={"cat_ex_id": ["no such catalog exchange"]}
            )
        with db_errors("exchange account"):
            row = await ex_db.create_account(db, caller.user_id, data)
        await request.app[AUTH].announce(Revocation.OWNERSHIP, caller.user_id)
        return json_response(_ex.dump(row), status=201)

    async def _owned(self, request: web.Request) -> Any:
        row = await ex_db.account_by_id(request.app[DB], path_int(request, "ex_id"))
        return check_owner(row, caller_of(request), "exchange_account")

    @doc(response=ExchangeOut)
    async def get_account(self, request: web.Request) -> web.Response:
        """One exchange account."""
        return json_response(_ex.dump(await self._owned(request)))

    @doc(body=ExchangeUpdateSchema, response=ExchangeOut)
    async def update_account(self, request: web.Request) -> web.Response:
        """Rename, (de)activate, switch test/live or replace the credentials of an account."""
        data = _encrypt_credentials(request, await load_json(request, _ex_update))
        row = await self._owned(request)
        with db_errors("exchange account"):
            row = await ex_db.update_account(request.app[DB], row["ex_id"], data)
        return json_response(_ex.dump(row))

    @doc(status=204)
    async def delete_account(self, request: web.Request) -> web.Response:
        """Delete an exchange account; refused (409) while orders or trades refer to it."""
        row = await self._owned(request)
        with db_errors("exchange account"):
            await ex_db.delete_account(request.app[DB], row["ex_id"])
        await request.app[AUTH].announce(Revocation.OWNERSHIP, row["user_id"])
        return web.Response(status=204)
