"""``/health``, ``/ready`` and ``/metrics``."""

from __future__ import annotations

import asyncio
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from adapters.http.api import Api, json_response
from adapters.http.keys import container
from adapters.http.models import HealthOut, ReadyOut


def package_version() -> str:
    try:
        return version("inkstream")
    except PackageNotFoundError:
        return "0.0.0"


async def _check_nats(request: web.Request) -> dict[str, Any]:
    c = container(request)
    if not c.nc.is_connected:
        return {"status": "down", "error": "not connected"}
    try:
        async with asyncio.timeout(1.5):
            last = await c.store.last_position()
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        return {"status": "down", "error": str(exc) or type(exc).__name__}
    return {"status": "up", "last_position": last}


async def _check_postgres(request: web.Request) -> dict[str, Any]:
    c = container(request)
    try:
        async with asyncio.timeout(1.5):
            async with c.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "error": str(exc) or type(exc).__name__}
    return {"status": "up"}


def _check_projections(request: web.Request) -> dict[str, Any]:
    c = container(request)
    out: dict[str, Any] = {}
    for runner in c.runners:
        s = runner.state
        entry: dict[str, Any] = {"status": s.status, "position": s.position}
        if s.status == "halted":
            entry.update(error=s.error, error_position=s.error_position)
        out[runner.name] = entry
    if not c.runners:  # an API-only process: report what the runners recorded
        for name in (p.name for p in c.projections):
            out[name] = {"status": c.watch.status.get(name, "unknown"), "position": c.watch.position(name)}
    return out


async def health(request: web.Request) -> web.Response:
    """200 healthy, or 503 unhealthy naming each failing check."""
    nats_check, pg_check = await asyncio.gather(_check_nats(request), _check_postgres(request))
    projections = _check_projections(request)
    checks: dict[str, Any] = {"nats": nats_check, "postgres": pg_check, "projections": projections}
    failing = [name for name in ("nats", "postgres") if checks[name]["status"] != "up"]
    failing += [f"projection:{n}" for n, p in projections.items() if p["status"] == "halted"]
    body = {
        "status": "unhealthy" if failing else "healthy",
        "version": package_version(),
        "checks": checks,
    }
    if failing:
        body["failing"] = failing
    return json_response(body, 503 if failing else 200)


async def ready(request: web.Request) -> web.Response:
    c = container(request)
    is_ready = c.is_ready()
    body = {"ready": is_ready, "target_position": c.ready_target,
            "projections": {p.name: c.watch.position(p.name) for p in c.projections}}
    return json_response(body, 200 if is_ready else 503)


async def metrics(request: web.Request) -> web.Response:
    c = container(request)
    return web.Response(body=c.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def register(api: Api) -> None:
    api.operation("GET", "/health", summary="Health of the service and each dependency", tag="operations",
                  response=HealthOut, auth=False, errors=(503,))(health)
    api.operation("GET", "/ready", summary="200 once streams exist and projections caught up", tag="operations",
                  response=ReadyOut, auth=False, errors=(503,))(ready)
    api.operation("GET", "/metrics", summary="Prometheus metrics", tag="operations", auth=False,
                  produces=("text/plain",))(metrics)
