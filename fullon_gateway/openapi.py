"""The OpenAPI document, generated from the app's router and marshmallow schemas.

Handlers describe their input and output with ``@doc(...)`` (metadata on the view);
the generator walks ``app.router`` so every route of every branch is in the spec,
with or without metadata: the view's docstring is always its summary, and its
``@public`` / ``@requires`` declaration decides the security shown. The document is
built once per app on first request (the router is frozen by then) and cached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from marshmallow import Schema, fields

from fullon_gateway import __version__
from fullon_gateway.auth.identity import public, requirement_of
from fullon_gateway.jsonutil import dumps
from fullon_gateway.openapi_page import DOCS_PAGE
from fullon_gateway.schemas.fields import AwareDateTime, TimeInput

_ATTR = "__fullon_doc__"
SPEC_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/docs"


@dataclass(frozen=True)
class Doc:
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    paged: bool = False
    many: bool = False
    tags: tuple[str, ...] = ()
    # Further answers the view gives, status -> why (401 for a wrong password...).
    errors: tuple[tuple[int, str], ...] = ()
    # The body may also come as an HTML form (urlencoded or multipart).
    form: bool = False


def doc(
    *,
    body: type[Schema] | None = None,
    query: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    paged: bool = False,
    many: bool = False,
    tags: tuple[str, ...] = (),
    errors: dict[int, str] | None = None,
    form: bool = False,
) -> Any:
    """Describe a view for the spec: request body, query and response schemas."""

    def mark(view: Any) -> Any:
        setattr(view, _ATTR, Doc(body, query, response, status, paged, many, tags,
                                 tuple(sorted((errors or {}).items())), form))
        return view

    return mark


class ErrorOut(Schema):
    detail = fields.String(required=True)
    code = fields.String(required=True)
    fields_ = fields.Dict(
        data_key="fields", keys=fields.String(), values=fields.List(fields.String())
    )


_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _tag_of(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    if parts[:3] == ["api", "v1", "orm"] and len(parts) > 3:
        return parts[3]
    if parts[:2] == ["api", "v1"] and len(parts) > 2:
        return parts[2]
    return parts[0] if parts else "root"


def _schema_name(cls: type[Schema]) -> str:
    return cls.__name__.removesuffix("Schema") or cls.__name__


def _paged_schema(spec: APISpec, item: str) -> str:
    """``{"items": [item], "next_cursor"}`` for a list answer."""
    name = f"{item}Page"
    if name not in spec.components.schemas:
        spec.components.schema(
            name,
            {
                "type": "object",
                "required": ["items", "next_cursor"],
                "properties": {
                    "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
                    "next_cursor": {"type": "string", "nullable": True},
                },
            },
        )
    return name


class _Names:
    """Component names, unique even when two modules define schemas with one name
    (auth's UserOut and users' UserOut): the second gets its module as a prefix."""

    def __init__(self) -> None:
        self.by_cls: dict[type[Schema], str] = {}
        self.taken: set[str] = set()

    def __call__(self, schema: Any) -> str:
        resolved = resolve_schema_cls(schema)
        cls: type[Schema] = resolved[0] if isinstance(resolved, list) else resolved
        if cls in self.by_cls:
            return self.by_cls[cls]
        name = _schema_name(cls)
        if name in self.taken:
            name = cls.__module__.rsplit(".", 1)[-1].title() + name
        self.by_cls[cls] = name
        self.taken.add(name)
        return name


def _register(spec: APISpec, cls: type[Schema], names: _Names) -> str:
    name = names(cls)
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=cls)
    return name


def build_spec(app: web.Application) -> dict[str, Any]:
    names = _Names()
    plugin = MarshmallowPlugin(schema_name_resolver=names)
    spec = APISpec(
        title="fullon_gateway",
        version=__version__,
        openapi_version="3.0.3",
        plugins=[plugin],
        info={
            "description": "The front door of the fullon trading platform: auth, REST "
            "and live WebSocket streams. Generated from the routes."
        },
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT or API key"}
    )
    spec.components.security_scheme(
        "apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    )
    plugin.map_to_openapi_type(AwareDateTime, "string", "date-time")
    plugin.map_to_openapi_type(TimeInput, "string", None)
    error_ref = "#/components/schemas/" + _register(spec, ErrorOut, names)
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        method = route.method.lower()
        if method in ("head", "*", "options"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        if path is None:
            continue  # static files and the like
        path = _PARAM.sub(r"{\1}", path)
        view = route.handler
        meta: Doc = getattr(view, _ATTR, None) or Doc()
        need = requirement_of(view, route.method)
        text = (view.__doc__ or "").strip()
        summary = text.splitlines()[0] if text else f"{route.method} {path}"
        op: dict[str, Any] = {
            "summary": summary,
            "operationId": f"{method}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
            "tags": list(meta.tags) or [_tag_of(path)],
            "responses": {},
        }
        if text and "\n" in text:
            op["description"] = text
        params: list[dict[str, Any]] = [
            {
                "in": "path",
                "name": name,
                "required": True,
                "schema": {"type": "integer", "minimum": 1}
                if name.endswith("_id")
                else {"type": "string"},
            }
            for name in _PARAM.findall(path)
        ]
        if meta.query is not None:
            params.append({"in": "query", "schema": meta.query})
        if params:
            op["parameters"] = params
        if meta.body is not None:
            body = {"schema": {
                "$ref": f"#/components/schemas/{_register(spec, meta.body, names)}"}}
            types = ["application/json"]
            if meta.form:
                types += ["application/x-www-form-urlencoded", "multipart/form-data"]
            op["requestBody"] = {"required": True, "content": {t: body for t in types}}
        ok: dict[str, Any] = {"description": "success"}
        if meta.status == 204:
            pass
        elif meta.response is not None:
            name = _register(spec, meta.response, names)
            ref: dict[str, Any] = {"$ref": f"#/components/schemas/{name}"}
            if meta.paged:
                ref = {"$ref": f"#/components/schemas/{_paged_schema(spec, name)}"}
            elif meta.many:
                ref = {"type": "array", "items": ref}
            ok["content"] = {"application/json": {"schema": ref}}
        else:
            ok["content"] = {"application/json": {"schema": {}}}
        op["responses"][str(meta.status)] = ok
        error = {"content": {"application/json": {"schema": {"$ref": error_ref}}}}
        if need.public:
            op["security"] = []
        else:
            op["security"] = [{"bearer": []}, {"apiKey": []}]
            op["responses"]["401"] = {"description": "not authenticated", **error}
            op["responses"]["403"] = {"description": "not allowed", **error}
        if meta.body is not None or meta.query is not None:
            op["responses"]["422"] = {"description": "invalid input", **error}
        if meta.body is not None:
            op["responses"]["400"] = {"description": "body is not a JSON object", **error}
        if method in ("post", "put", "patch", "delete") and not need.public:
            op["responses"]["409"] = {"description": "conflicts with the current state", **error}
        if "{" in path:
            op["responses"]["404"] = {"description": "no such object", **error}
        for status, why in meta.errors:
            op["responses"][str(status)] = {"description": why, **error}
        paths.setdefault(path, {})[method] = op
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


class OpenApiHandler:
    def __init__(self) -> None:
        # One handler per app; the router is frozen before the first request, so the
        # document built then stays right for the app's life.
        self._cached: bytes | None = None

    def routes(self) -> list[web.RouteDef]:
        return [web.get(SPEC_PATH, self.spec), web.get(DOCS_PATH, self.docs)]

    @public
    async def spec(self, request: web.Request) -> web.Response:
        """The OpenAPI 3 description of every route, generated from the router."""
        if self._cached is None:
            self._cached = dumps(build_spec(request.app))
        return web.Response(body=self._cached, content_type="application/json")

    @public
    async def docs(self, request: web.Request) -> web.Response:
        """A human-readable page rendering the OpenAPI document."""
        return web.Response(
            text=DOCS_PAGE.replace("{{SPEC_PATH}}", SPEC_PATH), content_type="text/html"
        )
