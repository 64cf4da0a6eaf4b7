"""The problem+json middleware: a crash is a 500 with a correlation id that the log
also holds, and never a traceback; aiohttp's own errors become problems too."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from adapters.http.problems import problem_middleware
from domain.errors import FieldError, Forbidden, ValidationFailed


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals: password=hunter2")


async def refuse(request: web.Request) -> web.Response:
    raise Forbidden("this bucket belongs to another user")


async def invalid(request: web.Request) -> web.Response:
    raise ValidationFailed("bad", [FieldError("/b", "b is required"), FieldError("/a", "a must be string")])


async def crowded(request: web.Request) -> web.Response:
    raise asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")


async def client() -> TestClient:
    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/boom", boom)
    app.router.add_get("/refuse", refuse)
    app.router.add_get("/invalid", invalid)
    app.router.add_get("/crowded", crowded)
    c = TestClient(TestServer(app))
    await c.start_server()
    return c


async def test_a_crash_is_a_500_problem_with_a_correlation_id_in_the_log_and_no_traceback() -> None:
    c = await client()
    try:
        with capture_logs() as logs:
            r = await c.get("/boom")
            body = await r.json()
        assert r.status == 500 and r.content_type == "application/problem+json"
        assert body["correlation_id"] in body["detail"]
        assert "hunter2" not in await r.text() and "Traceback" not in await r.text()
        assert any(e.get("correlation_id") == body["correlation_id"] for e in logs)
    finally:
        await c.close()


async def test_domain_errors_and_unknown_routes_are_problems_with_the_contract_phrases() -> None:
    c = await client()
    try:
        r = await c.get("/refuse")
        body = await r.json()
        assert (r.status, body["code"]) == (403, "forbidden") and body["detail"].startswith("forbidden: ")
        r = await c.get("/invalid")
        body = await r.json()
        assert r.status == 422 and [e["path"] for e in body["errors"]] == ["/a", "/b"]
        r = await c.get("/nowhere")
        body = await r.json()
        assert (r.status, body["code"]) == (404, "not_found") and body["detail"].startswith("not found")
    finally:
        await c.close()


async def test_a_database_out_of_connections_is_a_503_not_a_crash() -> None:
    c = await client()
    try:
        r = await c.get("/crowded")
        body = await r.json()
        assert (r.status, body["code"]) == (503, "unavailable"), body
        assert "Retry-After" in r.headers
    finally:
        await c.close()
