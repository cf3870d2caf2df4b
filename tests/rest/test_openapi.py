"""The generated OpenAPI document and the /docs page."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from fullon_gateway.app import create_app
from fullon_gateway.openapi import build_spec
from tests.rest.support import call


def _norm(path: str) -> str:
    return re.sub(r"{([^}:]+)(?::[^}]*)?}", r"{\1}", path)


async def test_every_route_is_in_the_spec(client):
    """Every method+path registered on the app's router appears in /api/v1/openapi.json."""
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    assert spec["openapi"].startswith("3.")
    missing = []
    for route in client.app.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*"):
            continue
        info = route.resource.get_info()
        raw = info.get("formatter") or info.get("path")
        if raw is None:  # static file directories have no single path to document
            continue
        path = _norm(raw)
        if route.method.lower() not in spec["paths"].get(path, {}):
            missing.append(f"{route.method} {path}")
    assert not missing, missing
    assert sum(len(ops) for ops in spec["paths"].values()) >= 70


async def test_spec_carries_schemas_security_and_summaries(client):
    """Operations have docstring summaries, body/query/response schemas and the right
    security; public routes have none."""
    spec = await (await client.get("/api/v1/openapi.json")).json()
    create_bot = spec["paths"]["/api/v1/orm/bots"]["post"]
    assert create_bot["summary"].startswith("Create a bot")
    body_ref = create_bot["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert "name" in body["required"] and body["additionalProperties"] is False
    assert "201" in create_bot["responses"] and "422" in create_bot["responses"]
    assert create_bot["security"] == [{"bearer": []}, {"apiKey": []}]
    list_orders = spec["paths"]["/api/v1/orm/orders"]["get"]
    names = {p["name"] for p in list_orders["parameters"]}
    assert {"limit", "cursor", "bot_id", "symbol", "status", "since", "until"} <= names
    page_ref = list_orders["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page_ref.endswith("OrderOutPage")
    one = spec["paths"]["/api/v1/orm/bots/{bot_id}"]["get"]
    assert one["parameters"][0] == {
        "in": "path",
        "name": "bot_id",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
    assert "404" in one["responses"]
    assert spec["paths"]["/health"]["get"]["security"] == []
    assert spec["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    assert "UserOut" in spec["components"]["schemas"]


async def test_spec_is_valid_openapi(client):
    """The document validates against the OpenAPI 3.0 meta-schema."""
    from openapi_spec_validator import validate

    spec = await (await client.get("/api/v1/openapi.json")).json()
    try:
        validate(spec)
    except Exception as exc:  # the default message dumps the whole document
        raise AssertionError(str(exc)[:2000]) from None
    assert spec["components"]["schemas"]["OrderOut"]["properties"]["created_at"] == {
        "type": "string",
        "format": "date-time",
    }


async def test_routes_added_by_other_handlers_appear(settings):
    """Routes another branch registers (with no schemas, with regex parameters) show up
    with their docstring; static directories are skipped without breaking the spec."""
    app = create_app(settings)

    async def hello(request: web.Request) -> web.Response:
        """Say hello from a route this module knows nothing about."""
        return web.json_response({})

    app.router.add_get("/api/v1/other/{thing}", hello)
    app.router.add_get(r"/api/v1/regex/{n:\d+}", hello)
    app.router.add_static("/static", str(Path(__file__).parent))
    spec = build_spec(app)
    assert "/api/v1/regex/{n}" in spec["paths"]
    assert not any(p.startswith("/static") for p in spec["paths"])
    op = spec["paths"]["/api/v1/other/{thing}"]["get"]
    assert op["summary"] == "Say hello from a route this module knows nothing about."
    assert op["tags"] == ["other"]


async def test_docs_page_renders_the_spec(client, make_account):
    """/docs is a public HTML page that loads the spec from this server (no CDN)."""
    resp = await client.get("/docs")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert "/api/v1/openapi.json" in page and "<script" in page and "https://" not in page
    user = await make_account()
    await call(client, "GET", "/users/me", user)


async def test_login_is_fully_described(client):
    """The login operation carries its request body (JSON and forms) and every status it
    answers with: 200 with a token pair, 400, 401, 422 and 429."""
    spec = await (await client.get("/api/v1/openapi.json")).json()
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    content = login["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded",
                            "multipart/form-data"}
    body = spec["components"]["schemas"][
        content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"email", "username", "password"} <= set(body["properties"])
    assert {"200", "400", "401", "422", "429"} <= set(login["responses"])
    ok = login["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert "access_token" in spec["components"]["schemas"][ok.rsplit("/", 1)[1]]["properties"]


async def test_no_operation_declares_a_parameter_twice(client):
    """No operation names one parameter twice, in the path or the query (catalog
    symbols had cat_ex_id in both)."""
    spec = await (await client.get("/api/v1/openapi.json")).json()
    twice = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            seen = [p["name"] for p in op.get("parameters", [])]
            twice += [f"{method} {path} {k}" for k in set(seen) if seen.count(k) > 1]
    assert not twice, twice
