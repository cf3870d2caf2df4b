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
            problem = definition_problem(spec)
            if problem:
                raise ValidationError(f"parameter {name!r}: {problem}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def definition_problem(spec: Any) -> str | None:
    """Why a parameter definition is unusable, or None. Checked on write, so a user's
    bot strategy is never compared against a ``min: "abc"`` (that was a 500)."""
    if not isinstance(spec, dict) or spec.get("type") not in PARAM_TYPES:
        return f"needs a definition with type one of {sorted(PARAM_TYPES)}"
    unknown = set(spec) - {"type", "default", "min", "max", "description"}
    if unknown:
        return f"unknown keys {sorted(unknown)}"
    kind = spec["type"]
    if not isinstance(spec.get("description", ""), str):
        return "description must be a string"
    bounds = [key for key in ("min", "max") if spec.get(key) is not None]
    if bounds and kind not in ("int", "float"):
        return f"{' and '.join(bounds)} apply to int and float parameters only"
    for key in bounds:
        if not _number(spec[key]) or (kind == "int" and not isinstance(spec[key], int)):
            return f"{key} must be a number of type {kind}"
    if len(bounds) == 2 and spec["min"] > spec["max"]:
        return "min must not exceed max"
    if spec.get("default") is not None:
        default = spec["default"]
        errors = check_params({"default": spec}, {"default": default})
        if errors:
            return f"default {errors['params.default'][0]}"
    return None


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
            # Only numeric bounds compare (definitions stored before they were checked
            # on write may hold anything).
            low, high = spec.get("min"), spec.get("max")
            if _number(low) and value < low:
                errors[f"params.{name}"] = [f"must be at least {low}"]
            elif _number(high) and value > high:
                errors[f"params.{name}"] = [f"must be at most {high}"]
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
