"""Trades (bot fills, live and dry-run), statistics and performance."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from fullon_gateway.pagination import PageQuery
from fullon_gateway.schemas.fields import Amount, AwareDateTime, BigId, Id, Text, TimeInput
from fullon_gateway.schemas.orders import SIDES
from fullon_gateway.store.trades import BUCKETS


class TradeOut(Schema):
    trade_id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    bot_id = fields.Integer(allow_none=True)
    ex_id = fields.Integer(required=True)
    order_id = fields.Integer(allow_none=True)
    symbol = fields.String(required=True)
    side = fields.String(required=True)
    volume = fields.Float(required=True)
    price = fields.Float(required=True)
    cost = fields.Float(required=True)
    fee = fields.Float(required=True)
    roi = fields.Float(allow_none=True)
    roi_pct = fields.Float(allow_none=True)
    dry_run = fields.Boolean(required=True)
    ts = AwareDateTime(required=True)


class TradeCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    ex_id = Id(required=True)
    bot_id = Id(load_default=None, allow_none=True)
    order_id = BigId(load_default=None, allow_none=True)
    symbol = Text(50, min_len=1, required=True)
    side = fields.String(required=True, validate=validate.OneOf(SIDES))
    volume = Amount(required=True)
    price = Amount(required=True)
    fee = Amount(positive=False, nonnegative=True, load_default=0)
    roi = Amount(positive=False, load_default=None, allow_none=True)
    roi_pct = Amount(positive=False, load_default=None, allow_none=True)
    dry_run = fields.Boolean(load_default=False)
    ts = TimeInput(load_default=None, allow_none=True)


class TradeListQuery(PageQuery):
    bot_id = Id()
    ex_id = Id()
    order_id = BigId()
    symbol = Text(50)
    side = fields.String(validate=validate.OneOf(SIDES))
    dry_run = fields.Boolean()
    since = TimeInput(metadata={"description": "at or after (ISO 8601 or epoch ms)"})
    until = TimeInput(metadata={"description": "before"})
    user_id = Id(metadata={"description": "admin only: one user's trades"})


class TradeStatsQuery(TradeListQuery):
    pass


class PerformanceQuery(TradeStatsQuery):
    bucket = fields.String(load_default="day", validate=validate.OneOf(BUCKETS))


class TradeStatsOut(Schema):
    trades = fields.Integer(required=True)
    wins = fields.Integer(required=True)
    losses = fields.Integer(required=True)
    win_rate = fields.Float(allow_none=True)
    pnl = fields.Float(required=True)
    fees = fields.Float(required=True)
    volume = fields.Float(required=True)
    best_trade = fields.Float(allow_none=True)
    worst_trade = fields.Float(allow_none=True)
    last_trade_at = AwareDateTime(allow_none=True)


class PerformancePointOut(Schema):
    period = AwareDateTime(required=True)
    trades = fields.Integer(required=True)
    wins = fields.Integer(required=True)
    pnl = fields.Float(required=True)
    fees = fields.Float(required=True)
    volume = fields.Float(required=True)
    cumulative_pnl = fields.Float(required=True)


class PerformanceOut(Schema):
    bucket = fields.String(required=True)
    points = fields.List(fields.Nested(PerformancePointOut), required=True)
