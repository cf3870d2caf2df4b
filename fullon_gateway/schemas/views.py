"""Dashboard views: shapes of the SQL aggregates."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields

from fullon_gateway.pagination import PageQuery
from fullon_gateway.schemas.bots import BotStatsOut
from fullon_gateway.schemas.fields import Id, TimeInput
from fullon_gateway.schemas.trades import TradeStatsOut


class BotDashboardQuery(PageQuery):
    bot_id = Id()
    active = fields.Boolean()
    user_id = Id(metadata={"description": "admin only: one user's bots"})


class BotDashboardRowOut(BotStatsOut):
    pass


class PortfolioQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    user_id = Id(metadata={"description": "admin only: one user's portfolio"})


class ExchangeBreakdownOut(Schema):
    ex_id = fields.Integer(required=True)
    name = fields.String(required=True)
    exchange = fields.String(required=True)
    trades = fields.Integer(required=True)
    pnl = fields.Float(required=True)
    fees = fields.Float(required=True)
    volume = fields.Float(required=True)


class PortfolioStatsOut(TradeStatsOut):
    exchanges = fields.Integer(required=True)
    bots = fields.Integer(required=True)
    active_bots = fields.Integer(required=True)
    open_orders = fields.Integer(required=True)
    by_exchange = fields.List(fields.Nested(ExchangeBreakdownOut), required=True)


class OverviewQuery(PortfolioQuery):
    since = TimeInput()
    until = TimeInput()


class SymbolVolumeOut(Schema):
    symbol = fields.String(required=True)
    trades = fields.Integer(required=True)
    buys = fields.Integer(required=True)
    sells = fields.Integer(required=True)
    base_volume = fields.Float(required=True)
    volume = fields.Float(required=True)
    pnl = fields.Float(required=True)
    fees = fields.Float(required=True)


class TradingOverviewOut(Schema):
    totals = fields.Nested(TradeStatsOut, required=True)
    by_symbol = fields.List(fields.Nested(SymbolVolumeOut), required=True)
    orders_by_status = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
