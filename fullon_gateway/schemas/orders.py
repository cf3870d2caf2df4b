"""Orders: creation, filters, and status changes."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from fullon_gateway.pagination import PageQuery
from fullon_gateway.schemas.fields import Amount, AwareDateTime, Id, Text, TimeInput
from fullon_gateway.store.orders import STATUSES

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop", "stop_limit")


class OrderOut(Schema):
    order_id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    bot_id = fields.Integer(allow_none=True)
    ex_id = fields.Integer(required=True)
    symbol = fields.String(required=True)
    side = fields.String(required=True)
    order_type = fields.String(required=True)
    volume = fields.Float(required=True)
    price = fields.Float(allow_none=True)
    filled = fields.Float(required=True)
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    ex_order_id = fields.String(allow_none=True)
    created_at = AwareDateTime()
    updated_at = AwareDateTime()


class OrderCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    ex_id = Id(required=True)
    bot_id = Id(load_default=None, allow_none=True)
    symbol = Text(50, min_len=1, required=True)
    side = fields.String(required=True, validate=validate.OneOf(SIDES))
    order_type = fields.String(load_default="limit", validate=validate.OneOf(ORDER_TYPES))
    volume = Amount(required=True)
    price = Amount(load_default=None, allow_none=True)
    ex_order_id = Text(100, load_default=None, allow_none=True)

    @validates_schema
    def _price_for_limit(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("order_type") in ("limit", "stop_limit") and data.get("price") is None:
            raise ValidationError("a limit order needs a price", field_name="price")


class OrderStatusSchema(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    reason = Text(500, load_default=None, allow_none=True)
    filled = Amount(positive=False, nonnegative=True, load_default=None, allow_none=True)


class OrderListQuery(PageQuery):
    bot_id = Id()
    ex_id = Id()
    symbol = Text(50)
    side = fields.String(validate=validate.OneOf(SIDES))
    status = fields.String(validate=validate.OneOf(STATUSES))
    since = TimeInput(metadata={"description": "created at or after (ISO 8601 or epoch ms)"})
    until = TimeInput(metadata={"description": "created before"})
    user_id = Id(metadata={"description": "admin only: one user's orders"})
