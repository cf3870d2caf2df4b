"""Exchange catalog and users' exchange accounts. Credentials go in, never out."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from fullon_gateway.pagination import PageQuery
from fullon_gateway.schemas.fields import AwareDateTime, Id, JsonObject, JsonOut, Text

_NAME = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="lowercase letters, digits, . _ -")


class CatExchangeOut(Schema):
    cat_ex_id = fields.Integer(required=True)
    name = fields.String(required=True)
    ohlcv_view = fields.String()
    params = JsonOut()
    created_at = AwareDateTime()


class CatExchangeCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=[validate.Length(min=1, max=50), _NAME])
    ohlcv_view = Text(100, load_default="")
    params = JsonObject(load_default=dict)


class ExchangeOut(Schema):
    ex_id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    cat_ex_id = fields.Integer(required=True)
    exchange = fields.String(required=True, metadata={"description": "catalog name"})
    name = fields.String(required=True)
    test = fields.Boolean(required=True)
    active = fields.Boolean(required=True)
    has_credentials = fields.Boolean(required=True)
    created_at = AwareDateTime()
    updated_at = AwareDateTime()


class _Credentials(Schema):
    api_key = Text(500, min_len=1, metadata={"description": "write-only"})
    api_secret = Text(2000, min_len=1, metadata={"description": "write-only"})

    @validates_schema
    def _both_or_neither(self, data: dict[str, Any], **_: Any) -> None:
        if ("api_key" in data) != ("api_secret" in data):
            raise ValidationError(
                "give api_key and api_secret together",
                field_name="api_secret" if "api_key" in data else "api_key",
            )


class ExchangeCreateSchema(_Credentials):
    class Meta:
        unknown = RAISE

    cat_ex_id = Id(required=True)
    name = Text(100, min_len=1, required=True)
    test = fields.Boolean(load_default=False)
    active = fields.Boolean(load_default=True)


class ExchangeUpdateSchema(_Credentials):
    class Meta:
        unknown = RAISE

    name = Text(100, min_len=1)
    test = fields.Boolean()
    active = fields.Boolean()


class ExchangeListQuery(PageQuery):
    cat_ex_id = Id()
    active = fields.Boolean()
    user_id = Id(metadata={"description": "admin only: one user's accounts"})
