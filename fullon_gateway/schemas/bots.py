"""Bots, their feeds, exchange accounts, logs and statistics."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from fullon_gateway.pagination import PageQuery
from fullon_gateway.schemas.exchanges import ExchangeOut
from fullon_gateway.schemas.fields import AwareDateTime, Id, Text
from fullon_gateway.schemas.strategies import BotStrategyOut

PERIODS = ("ticks", "minutes", "hours", "days", "weeks", "months")
LOG_LEVELS = ("debug", "info", "warning", "error")


class BotOut(Schema):
    bot_id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String()
    dry_run = fields.Boolean(required=True)
    active = fields.Boolean(required=True)
    ex_ids = fields.List(
        fields.Integer(),
        required=True,
        metadata={"description": "exchange accounts the bot trades on"},
    )
    created_at = AwareDateTime()
    updated_at = AwareDateTime()


class BotUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = Text(100, min_len=1)
    description = Text(2000)
    dry_run = fields.Boolean()
    active = fields.Boolean()
    ex_ids = fields.List(Id(), validate=validate.Length(max=50))


class BotCreateSchema(BotUpdateSchema):
    name = Text(100, min_len=1, required=True)
    description = Text(2000, load_default="")
    dry_run = fields.Boolean(load_default=True)
    active = fields.Boolean(load_default=False)
    ex_ids = fields.List(Id(), load_default=list, validate=validate.Length(max=50))


class BotListQuery(PageQuery):
    active = fields.Boolean()
    dry_run = fields.Boolean()
    user_id = Id(metadata={"description": "admin only: one user's bots"})


class FeedOut(Schema):
    feed_id = fields.Integer(required=True)
    bot_id = fields.Integer(required=True)
    symbol_id = fields.Integer(required=True)
    symbol = fields.String(required=True)
    exchange = fields.String(required=True)
    period = fields.String(required=True)
    compression = fields.Integer(required=True)
    created_at = AwareDateTime()


class FeedCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    symbol_id = Id(required=True)
    period = fields.String(required=True, validate=validate.OneOf(PERIODS))
    compression = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))


class LogOut(Schema):
    log_id = fields.Integer(required=True)
    bot_id = fields.Integer(required=True)
    ts = AwareDateTime(required=True)
    level = fields.String(required=True)
    message = fields.String(required=True)


class LogCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    level = fields.String(load_default="info", validate=validate.OneOf(LOG_LEVELS))
    message = Text(10_000, min_len=1, required=True)


class LastLogQuery(PageQuery):
    """Newest first; 20 lines unless ``limit`` says otherwise."""

    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=1000))


class BotStatsOut(Schema):
    bot_id = fields.Integer(required=True)
    name = fields.String(required=True)
    user_id = fields.Integer(required=True)
    active = fields.Boolean()
    dry_run = fields.Boolean()
    orders = fields.Integer(required=True)
    open_orders = fields.Integer(required=True)
    trades = fields.Integer(required=True)
    wins = fields.Integer(required=True)
    losses = fields.Integer(required=True)
    win_rate = fields.Float(allow_none=True, metadata={"description": "wins / closed trades"})
    pnl = fields.Float(required=True)
    fees = fields.Float(required=True)
    volume = fields.Float(required=True)
    last_trade_at = AwareDateTime(allow_none=True)


class BotDetailsOut(BotOut):
    strategies = fields.List(fields.Nested(BotStrategyOut))
    feeds = fields.List(fields.Nested(FeedOut))
    exchanges = fields.List(fields.Nested(ExchangeOut))
