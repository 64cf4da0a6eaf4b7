"""Seed Task 13: /health, /ready and /metrics as the contract names them."""

from __future__ import annotations

import aiohttp

from tests.support.system import RunningSystem
from tests.support.users import new_user


async def test_health_is_healthy_with_a_version_and_each_check(http: aiohttp.ClientSession) -> None:
    async with http.get("/health") as r:
        body = await r.json()
    assert r.status == 200 and body["status"] == "healthy"
    assert body["version"].count(".") == 2
    assert body["checks"]["nats"]["status"] == "up" and body["checks"]["postgres"]["status"] == "up"
    assert all(p["status"] in ("starting", "running", "standby") for p in body["checks"]["projections"].values())


async def test_ready_is_200_once_projections_caught_up(http: aiohttp.ClientSession) -> None:
    async with http.get("/ready") as r:
        body = await r.json()
    assert r.status == 200 and body["ready"] is True, body  # the body names a halted projection


async def test_metrics_names_every_metric_of_the_contract(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "metrics")
    async with http.get("/v1/auth/me", headers=user.headers) as r:
        assert r.status == 200
    async with http.get("/metrics") as r:
        text = await r.text()
    for name in ("http_requests_total", "http_request_duration_seconds", "db_queries_total",
                 "websocket_connections_active", "events_appended_total", "projection_lag_events", "jobs_total"):
        assert name in text, name
    # the route template, not the raw path, is the label
    assert 'route="/v1/auth/me"' in text
    assert 'events_appended_total{type="User.Registered"}' in text


async def test_the_openapi_document_and_docs_page_are_served(http: aiohttp.ClientSession) -> None:
    async with http.get("/openapi.json") as r:
        doc = await r.json()
    assert doc["openapi"].startswith("3.") and "/v1/auth/register" in doc["paths"]
    async with http.get("/docs") as r:
        page = await r.text()
        assert r.status == 200 and "swagger-ui" in page and "cdn" not in page.lower()
    async with http.get("/docs/static/swagger-ui-bundle.js") as r:
        assert r.status == 200


async def test_health_and_metrics_report_the_mongo_store_and_its_projections(mongo_system: RunningSystem) -> None:
    """A process with MongoDB checks it beside PostgreSQL and reports each store's projections."""
    async with aiohttp.ClientSession(base_url=mongo_system.base_url) as http:
        await new_user(http, "mongo-metrics")
        last = await mongo_system.services.store.last_position()
        await mongo_system.running.watch.wait(last, [p.name for p in mongo_system.services.projections], 30)
        async with http.get("/health") as r:
            body = await r.json()
        assert r.status == 200, body
        checks = body["checks"]
        assert checks["mongo"]["status"] == "up" and checks["postgres"]["status"] == "up"
        assert checks["mongo_projections"]["users"]["status"] == "running"
        assert checks["mongo_projections"]["users"]["position"] >= last
        assert set(checks["mongo_projections"]) == set(checks["projections"])
        async with http.get("/ready") as r:
            assert r.status == 200
        async with http.get("/metrics") as r:
            text = await r.text()
    assert 'projection_events_total{projection="users",store="mongo"}' in text
    assert 'projection_lag_events{projection="users",store="mongo"}' in text
    assert 'projection_events_total{projection="users",store="postgres"}' in text
