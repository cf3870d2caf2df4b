"""Auth and API-key input and output."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from fullon_gateway.auth.identity import SCOPES
from fullon_gateway.schemas.fields import AwareDateTime


class LoginSchema(Schema):
    class Meta:
        unknown = RAISE

    username = fields.String(validate=validate.Length(min=1, max=320))
    email = fields.String(validate=validate.Length(min=1, max=320))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    # OAuth2 password-flow form fields that clients send and we do not use.
    grant_type = fields.String(load_default=None)
    scope = fields.String(load_default=None)
    client_id = fields.String(load_default=None)
    client_secret = fields.String(load_default=None)

    @validates_schema
    def _one_identity(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("username") and not data.get("email"):
            raise ValidationError("give username or email", field_name="username")


class NewUserSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, validate=validate.Length(min=8, max=1024))


class RefreshSchema(Schema):
    class Meta:
        unknown = RAISE

    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=512))


class UserOut(Schema):
    user_id = fields.Integer()
    email = fields.String()
    name = fields.String()
    role = fields.String()


class TokenPairOut(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    refresh_token = fields.String()
    user = fields.Nested(UserOut)


class VerifyOut(Schema):
    user_id = fields.Integer()
    username = fields.String()
    email = fields.String()
    role = fields.String()
    is_active = fields.Boolean()
    expires_at = fields.String(allow_none=True)


class ApiKeyCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPES)),
        required=True,
        validate=validate.Length(min=1, max=len(SCOPES)),
    )
    expires_at = AwareDateTime(load_default=None, allow_none=True)


class ApiKeyOut(Schema):
    id = fields.Integer(attribute="key_id")
    name = fields.String()
    key_prefix = fields.String()
    scopes = fields.List(fields.String())
    is_active = fields.Boolean()
    expires_at = AwareDateTime(allow_none=True)
    created_at = AwareDateTime()
    last_used_at = AwareDateTime(allow_none=True)


class ApiKeyCreatedOut(ApiKeyOut):
    key = fields.String()
