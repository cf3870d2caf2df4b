"""Strategy catalog (code with parameter definitions) and the strategies bots run."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validates

from fullon_gateway.pagination import PageQuery
from fullon_gateway.schemas.fields import Amount, AwareDateTime, Id, JsonObject, JsonOut, Text

PARAM_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int,
    "float": (int, float),
    "bool": bool,
    "str": str,
}


class CatStrategyOut(Schema):
    cat_str_id = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String()
    params = JsonOut(
        metadata={"description": "parameter definitions: name -> {type, default, min, max}"}
    )
    created_at = AwareDateTime()


class CatStrategyCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = Text(100, min_len=1, required=True)
    description = Text(2000, load_default="")
    params = JsonObject(load_default=dict)

    @validates("params")
    def _definitions(self, value: dict[str, Any], **_: Any) -> None:
        for name, spec in value.items():
            if not isinstance(spec, dict) or spec.get("type") not in PARAM_TYPES:
                raise ValidationError(
                    f"parameter {name!r} needs a definition with type one of {sorted(PARAM_TYPES)}"
                )
            unknown = set(spec) - {"type", "default", "min", "max", "description"}
            if unknown:
                raise ValidationError(f"parameter {name!r}: unknown keys {sorted(unknown)}")


def check_params(definitions: dict[str, Any], values: dict[str, Any]) -> dict[str, list[str]]:
    """Errors of ``values`` against a catalog strategy's definitions, by parameter."""
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        spec = definitions.get(name)
        if spec is None:
            errors[f"params.{name}"] = [f"unknown parameter (known: {sorted(definitions)})"]
            continue
        kind = spec.get("type")
        expected = PARAM_TYPES.get(kind or "", object)
        if not isinstance(value, expected) or (
            kind in ("int", "float") and isinstance(value, bool)
        ):
            errors[f"params.{name}"] = [f"must be of type {kind}"]
            continue
        if kind in ("int", "float"):
            if spec.get("min") is not None and value < spec["min"]:
                errors[f"params.{name}"] = [f"must be at least {spec['min']}"]
            elif spec.get("max") is not None and value > spec["max"]:
                errors[f"params.{name}"] = [f"must be at most {spec['max']}"]
    return errors


class BotStrategyOut(Schema):
    str_id = fields.Integer(required=True)
    bot_id = fields.Integer(required=True)
    cat_str_id = fields.Integer(required=True)
    strategy = fields.String(required=True)
    size = fields.Float(allow_none=True)
    leverage = fields.Float()
    params = JsonOut()
    created_at = AwareDateTime()
    updated_at = AwareDateTime()


class BotStrategyUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    size = Amount(allow_none=True)
    leverage = Amount()
    params = JsonObject()


class BotStrategyCreateSchema(BotStrategyUpdateSchema):
    bot_id = Id(required=True)
    cat_str_id = Id(required=True)
    size = Amount(load_default=None, allow_none=True)
    leverage = Amount(load_default=1)
    params = JsonObject(load_default=dict)


class BotStrategyListQuery(PageQuery):
    bot_id = Id()
    cat_str_id = Id()
