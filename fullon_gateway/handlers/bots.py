"""/api/v1/orm/bots: bots with their exchange accounts, feeds, strategies, stats and logs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fullon_gateway.auth.identity import caller_of
from fullon_gateway.auth.revocation import Revocation
from fullon_gateway.errors import Conflict, Invalid
from fullon_gateway.handlers.common import load_json, path_int
from fullon_gateway.handlers.orm_base import ORM, check_owner, db_errors, load_query, not_found
from fullon_gateway.jsonutil import json_response
from fullon_gateway.keys import AUTH, DB
from fullon_gateway.openapi import doc
from fullon_gateway.pagination import Page, PageQuery
from fullon_gateway.schemas.bots import (
    BotCreateSchema,
    BotDetailsOut,
    BotListQuery,
    BotOut,
    BotStatsOut,
    BotUpdateSchema,
    FeedCreateSchema,
    FeedOut,
    LastLogQuery,
    LogCreateSchema,
    LogOut,
)
from fullon_gateway.schemas.projection import Projection
from fullon_gateway.schemas.strategies import BotStrategyOut
from fullon_gateway.store import bots as bots_db
from fullon_gateway.store import exchanges as ex_db
from fullon_gateway.store import strategies as str_db
from fullon_gateway.store import symbols as sym_db
from fullon_gateway.store import views as views_db
from fullon_gateway.store.conn import Conn

_bot = Projection(BotOut())
_details = Projection(BotDetailsOut())
_list_q = BotListQuery()
_create = BotCreateSchema()
_update = BotUpdateSchema()
_feed = Projection(FeedOut())
_feed_create = FeedCreateSchema()
_log = Projection(LogOut())
_log_create = LogCreateSchema()
_last_log_q = LastLogQuery()
_page = PageQuery()
_stats = Projection(BotStatsOut())
_strategy = Projection(BotStrategyOut())


async def _check_accounts(db: Conn, owner_id: int, ex_ids: list[int] | None) -> None:
    """Every linked exchange account must exist and belong to the bot's owner."""
    if not ex_ids:
        return
    owners = await ex_db.owners_of(db, ex_ids)
    bad = [ex_id for ex_id in ex_ids if owners.get(ex_id) != owner_id]
    if bad:
        raise Invalid(
            "ex_ids names exchange accounts you do not have",
            fields={"ex_ids": [f"no such exchange account: {i}" for i in bad]},
        )


class BotsHandler:
    prefix = f"{ORM}/bots"

    def routes(self) -> list[web.RouteDef]:
        p = self.prefix
        one = f"{p}/{{bot_id}}"
        return [
            web.get(p, self.list_bots),
            web.post(p, self.create),
            web.get(one, self.get),
            web.patch(one, self.update),
            web.delete(one, self.delete),
            web.get(f"{one}/details", self.details),
            web.get(f"{one}/feeds", self.feeds),
            web.post(f"{one}/feeds", self.add_feed),
            web.delete(f"{one}/feeds/{{feed_id}}", self.delete_feed),
            web.get(f"{one}/strategies", self.strategies),
            web.get(f"{one}/stats", self.stats),
            web.get(f"{one}/last-log", self.last_log),
            web.post(f"{one}/logs", self.add_log),
        ]

    async def _owned(self, request: web.Request) -> Any:
        row = await bots_db.by_id(request.app[DB], path_int(request, "bot_id"))
        return check_owner(row, caller_of(request), "bot")

    @doc(query=BotListQuery, response=BotOut, paged=True)
    async def list_bots(self, request: web.Request) -> web.Response:
        """The caller's bots (an admin sees all, or one user's with user_id)."""
        q = load_query(request, _list_q)
        page = Page.from_query("bots", q)
        rows = await bots_db.list_bots(
            request.app[DB], caller_of(request), q, page.after, page.limit
        )
        return json_response(page.body(rows, "bot_id", _bot.dump_many))

    @doc(body=BotCreateSchema, response=BotOut, status=201)
    async def create(self, request: web.Request) -> web.Response:
        """Create a bot for the caller, optionally linked to their exchange accounts."""
        data = await load_json(request, _create)
        caller = caller_of(request)
        db = request.app[DB]
        await _check_accounts(db, caller.user_id, data["ex_ids"])
        async with db.acquire() as conn:
            with db_errors("bot"):
                row = await bots_db.create(conn, caller.user_id, data)
        await request.app[AUTH].announce(Revocation.OWNERSHIP, caller.user_id)
        return json_response(_bot.dump(row), status=201)

    @doc(response=BotOut)
    async def get(self, request: web.Request) -> web.Response:
        """One bot."""
        return json_response(_bot.dump(await self._owned(request)))

    @doc(body=BotUpdateSchema, response=BotOut)
    async def update(self, request: web.Request) -> web.Response:
        """Rename, describe, (de)activate, switch dry-run, or relink exchange accounts."""
        data = await load_json(request, _update)
        bot = await self._owned(request)
        db = request.app[DB]
        await _check_accounts(db, bot["user_id"], data.get("ex_ids"))
        async with db.acquire() as conn:
            with db_errors("bot"):
                row = await bots_db.update(conn, bot["bot_id"], bot["user_id"], data)
        if row is None:
            raise not_found("bot")
        return json_response(_bot.dump(row))

    @doc(status=204)
    async def delete(self, request: web.Request) -> web.Response:
        """Delete a bot with its strategies, feeds and logs; 409 while it has open orders.

        Its closed orders and trades stay in the owner's history (bot_id becomes null).
        """
        bot = await self._owned(request)
        async with request.app[DB].acquire() as conn:
            blocked = await bots_db.delete_unless_open_orders(conn, bot["bot_id"])
        if blocked is None:
            raise not_found("bot")
        if blocked:
            raise Conflict(
                f"bot {bot['bot_id']} has {blocked} open order(s); cancel or finish them "
                "before deleting the bot",
                code="bot_has_open_orders",
            )
        await request.app[AUTH].announce(Revocation.OWNERSHIP, bot["user_id"])
        return web.Response(status=204)

    @doc(response=BotDetailsOut)
    async def details(self, request: web.Request) -> web.Response:
        """A bot with its strategies, feeds and exchange accounts in one answer."""
        bot = await self._owned(request)
        db = request.app[DB]
        strategies = await str_db.for_bot(db, bot["bot_id"])
        feeds = await bots_db.feeds(db, bot["bot_id"])
        accounts = await ex_db.accounts_by_ids(db, list(bot["ex_ids"]))
        return json_response(
            _details.dump(
                {
                    **dict(bot),
                    "strategies": strategies,
                    "feeds": feeds,
                    "exchanges": accounts,
                }
            )
        )

    @doc(query=PageQuery, response=FeedOut, paged=True)
    async def feeds(self, request: web.Request) -> web.Response:
        """The market data feeds a bot consumes, a page at a time."""
        page = Page.from_query("bot_feeds", load_query(request, _page))
        bot = await self._owned(request)
        rows = await bots_db.feeds(request.app[DB], bot["bot_id"], page.after, page.limit)
        return json_response(page.body(rows, "feed_id", _feed.dump_many))

    @doc(body=FeedCreateSchema, response=FeedOut, status=201)
    async def add_feed(self, request: web.Request) -> web.Response:
        """Add a feed (symbol, period, compression) to a bot."""
        data = await load_json(request, _feed_create)
        bot = await self._owned(request)
        db = request.app[DB]
        if await sym_db.by_id(db, data["symbol_id"]) is None:
            raise Invalid("no such symbol", fields={"symbol_id": ["no such symbol"]})
        with db_errors("feed"):
            row = await bots_db.add_feed(db, bot["bot_id"], data)
        return json_response(_feed.dump(row), status=201)

    @doc(status=204)
    async def delete_feed(self, request: web.Request) -> web.Response:
        """Remove a feed from a bot."""
        bot = await self._owned(request)
        if not await bots_db.delete_feed(
            request.app[DB], bot["bot_id"], path_int(request, "feed_id")
        ):
            raise not_found("feed")
        return web.Response(status=204)

    @doc(query=PageQuery, response=BotStrategyOut, paged=True)
    async def strategies(self, request: web.Request) -> web.Response:
        """The strategies a bot runs, a page at a time."""
        page = Page.from_query("bot_strategies_of_bot", load_query(request, _page))
        bot = await self._owned(request)
        rows = await str_db.for_bot(request.app[DB], bot["bot_id"], page.after, page.limit)
        return json_response(page.body(rows, "str_id", _strategy.dump_many))

    @doc(response=BotStatsOut)
    async def stats(self, request: web.Request) -> web.Response:
        """Orders, open orders, trades, win rate, PnL, fees and volume of one bot (SQL)."""
        bot = await self._owned(request)
        rows = await views_db.bot_dashboard(
            request.app[DB], caller_of(request), {"bot_id": bot["bot_id"]}, None, 1
        )
        if not rows:
            raise not_found("bot")
        return json_response(_stats.dump(rows[0]))

    @doc(query=LastLogQuery, response=LogOut, paged=True)
    async def last_log(self, request: web.Request) -> web.Response:
        """The bot's most recent log lines, newest first (next_cursor: older ones)."""
        page = Page.from_query("bot_logs", load_query(request, _last_log_q))
        bot = await self._owned(request)
        rows = await bots_db.last_logs(request.app[DB], bot["bot_id"], page.after, page.limit)
        return json_response(page.body(rows, "log_id", _log.dump_many))

    @doc(body=LogCreateSchema, response=LogOut, status=201)
    async def add_log(self, request: web.Request) -> web.Response:
        """Append a log line to a bot (bots and their services report through this)."""
        data = await load_json(request, _log_create)
        bot = await self._owned(request)
        row = await bots_db.add_log(request.app[DB], bot["bot_id"], data["level"], data["message"])
        return json_response(_log.dump(row), status=201)
