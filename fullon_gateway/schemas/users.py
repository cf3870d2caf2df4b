"""Users: the caller's profile and the admin's user management."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from fullon_gateway.pagination import PageQuery
from fullon_gateway.schemas.fields import AwareDateTime, Text

ROLES = ("user", "admin")


class MeOut(Schema):
    user_id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    is_active = fields.Boolean(required=True)
    auth = fields.String(required=True, metadata={"description": "jwt or api_key"})
    scopes = fields.List(fields.String(), required=True)


class UserOut(Schema):
    user_id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    role = fields.String(required=True)
    is_active = fields.Boolean(required=True)
    created_at = AwareDateTime()
    updated_at = AwareDateTime()


class MeUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = Text(200, required=True)


class UserCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    email = fields.Email(required=True, validate=validate.Length(max=320))
    password = Text(1024, min_len=8, required=True)
    name = Text(200, load_default="")
    role = fields.String(load_default="user", validate=validate.OneOf(ROLES))


class UserUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = Text(200)
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()


class UserListQuery(PageQuery):
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()
    q = Text(100, metadata={"description": "substring of email or name"})
