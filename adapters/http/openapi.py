"""``/openapi.json`` from the route declarations and their pydantic models, and ``/docs``.

Swagger UI is served from the pinned ``swagger-ui-bundle`` package: no CDN.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from aiohttp import web
from pydantic import BaseModel

from adapters.http.api import Api, Operation, json_response
from adapters.http.keys import API
from adapters.http.models import Problem
from adapters.http.operations import package_version
from adapters.http.problems import STATUS

_PARAM = re.compile(r"\{(\w+)\}")

_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad request", 401: "Unauthorized",
                403: "Forbidden", 404: "Not found", 409: "Conflict", 412: "Precondition failed",
                413: "Payload too large", 422: "Validation failed", 429: "Rate limited", 503: "Unavailable"}

_CODES_BY_STATUS: dict[int, list[str]] = {}
for _code, _status in STATUS.items():
    _CODES_BY_STATUS.setdefault(_status, []).append(_code)


def _schema_ref(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault(model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in _PARAM.findall(op.path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    if op.method in ("POST",) and op.auth:
        params.append({"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                       "description": "A retry with the same key returns the original answer and changes nothing "
                                      "(for INKSTREAM_DUPLICATE_WINDOW_SECONDS, 24 h by default)."})
    if op.method in ("PUT", "PATCH", "DELETE") or (op.method == "POST" and "{" in op.path):
        params.append({"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                       "description": "The resource's ETag (its version); a stale value fails with 412."})
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": params,
        "responses": {},
    }
    if op.description:
        out["description"] = op.description
    if op.body is not None:
        out["requestBody"] = {"required": True,
                              "content": {"application/json": {"schema": _schema_ref(op.body, components, "validation")}}}
    ok: dict[str, Any] = {"description": _STATUS_TEXT.get(op.status, "OK")}
    if op.response is not None:
        ok["content"] = {"application/json": {"schema": _schema_ref(op.response, components, "serialization")}}
    elif op.produces != ("application/json",):
        ok["content"] = {ct: {"schema": {"type": "string"}} for ct in op.produces}
    else:
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    out["responses"][str(op.status)] = ok
    statuses = set(op.errors)
    if op.body is not None:
        statuses |= {400, 413}
    if op.auth:
        statuses.add(401)
    if op.path.startswith("/v1"):  # anonymous routes are limited per client address
        statuses.add(429)
    statuses.add(503)
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for status in sorted(statuses):
        codes = ", ".join(_CODES_BY_STATUS.get(status, []))
        out["responses"][str(status)] = {"description": f"{_STATUS_TEXT.get(status, 'Error')} ({codes})",
                                         "content": problem}
    if op.auth:
        out["security"] = [{"bearer": []}]
    return out


def build_document(api: Api) -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": Problem.model_json_schema()}
    paths: dict[str, Any] = {}
    for op in api.operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "inkstream",
            "version": package_version(),
            "description": "Event-sourced backend for writing studios. Commands answer with the log `position` "
                           "(also `X-Position`); queries wait for it by default (read-your-writes), accept "
                           "`min_position` and `consistency=eventual`. Errors are RFC 9457 problem+json. "
                           "Every JSON body nests at most 64 levels (400); sizes and numbers have the limits "
                           "stated on each field (docs/operations.md, \"Limits\"). "
                           "Live changes: `GET /v1/events` (server-sent events, below) and the WebSocket `/ws` "
                           "at the root, whose message protocol OpenAPI cannot describe (docs/live.md).",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(build_document(request.app[API]))


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>inkstream API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""

_INIT_JS = "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui'});\n"


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_PAGE, content_type="text/html")


async def docs_init(request: web.Request) -> web.Response:
    return web.Response(text=_INIT_JS, content_type="application/javascript")


def install(app: web.Application, api: Api) -> None:
    api.operation("GET", "/openapi.json", summary="This OpenAPI document", tag="operations", auth=False)(openapi_json)
    app.router.add_get("/docs", docs_page)
    app.router.add_get("/docs/init.js", docs_init)
    app.router.add_static("/docs/static", Path(swagger_ui_bundle.swagger_ui_path))
