"""Symbols tradable on catalog exchanges."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from fullon_gateway.pagination import PageQuery
from fullon_gateway.schemas.fields import AwareDateTime, Id, Text

UPDATEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")


class SymbolOut(Schema):
    symbol_id = fields.Integer(required=True)
    cat_ex_id = fields.Integer(required=True)
    exchange = fields.String(required=True)
    symbol = fields.String(required=True)
    base = fields.String(required=True)
    quote = fields.String(required=True)
    decimals = fields.Integer()
    futures = fields.Boolean()
    updateframe = fields.String()
    backtest = fields.Integer()
    active = fields.Boolean()
    created_at = AwareDateTime()


class SymbolUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    base = Text(20, min_len=1)
    quote = Text(20, min_len=1)
    decimals = fields.Integer(validate=validate.Range(min=0, max=18))
    futures = fields.Boolean()
    updateframe = fields.String(validate=validate.OneOf(UPDATEFRAMES))
    backtest = fields.Integer(validate=validate.Range(min=0, max=3650))
    active = fields.Boolean()


class SymbolCreateSchema(SymbolUpdateSchema):
    cat_ex_id = Id(required=True)
    symbol = Text(50, min_len=1, required=True)
    base = Text(20, min_len=1, required=True)
    quote = Text(20, min_len=1, required=True)
    decimals = fields.Integer(load_default=8, validate=validate.Range(min=0, max=18))
    futures = fields.Boolean(load_default=False)
    updateframe = fields.String(load_default="1h", validate=validate.OneOf(UPDATEFRAMES))
    backtest = fields.Integer(load_default=30, validate=validate.Range(min=0, max=3650))
    active = fields.Boolean(load_default=True)


class CatalogSymbolsQuery(PageQuery):
    """Filters of one catalog exchange's symbols (the exchange is in the path)."""

    base = Text(20)
    quote = Text(20)
    futures = fields.Boolean()
    active = fields.Boolean()


class SymbolListQuery(CatalogSymbolsQuery):
    cat_ex_id = Id()
    exchange = Text(50, metadata={"description": "catalog exchange name"})


class SymbolSearchQuery(PageQuery):
    q = Text(
        50,
        min_len=1,
        required=True,
        metadata={"description": "case-insensitive substring of the symbol"},
    )
    exchange = Text(50)
