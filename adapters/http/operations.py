"""``/health``, ``/ready`` and ``/metrics``.

The routes ask a ``Probes`` object (``adapters.http.probes``, implemented by
the runtime) what they report, so they know nothing of how the log or the
read-model store is reached.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from adapters.http.api import Api, json_response
from adapters.http.keys import METRICS, PROBES
from adapters.http.models import HealthOut, ReadyOut
from adapters.http.probes import Probes


def package_version() -> str:
    try:
        return version("inkstream")
    except PackageNotFoundError:
        return "0.0.0"


async def _check_nats(probes: Probes) -> dict[str, Any]:
    if not probes.log_connected():
        return {"status": "down", "error": "not connected"}
    try:
        async with asyncio.timeout(1.5):
            last = await probes.log_position()
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        return {"status": "down", "error": str(exc) or type(exc).__name__}
    return {"status": "up", "last_position": last}


async def _check_postgres(probes: Probes) -> dict[str, Any]:
    try:
        async with asyncio.timeout(1.5):
            await probes.ping_read_store()
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "error": str(exc) or type(exc).__name__}
    return {"status": "up"}


def _check_projections(probes: Probes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, s in probes.projections().items():
        entry: dict[str, Any] = {"status": s.status, "position": s.position}
        if s.status == "halted":
            entry.update(error=s.error, error_position=s.error_position)
        out[name] = entry
    return out


async def health(request: web.Request) -> web.Response:
    """200 healthy, or 503 unhealthy naming each failing check."""
    probes = request.app[PROBES]
    nats_check, pg_check = await asyncio.gather(_check_nats(probes), _check_postgres(probes))
    projections = _check_projections(probes)
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
    probes = request.app[PROBES]
    is_ready = probes.ready()
    body = {"ready": is_ready, "target_position": probes.ready_target,
            "projections": {name: s.position for name, s in probes.projections().items()}}
    return json_response(body, 200 if is_ready else 503)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def register_routes(api: Api) -> None:
    api.operation("GET", "/health", summary="Health of the service and each dependency", tag="operations",
                  response=HealthOut, auth=False, errors=(503,))(health)
    api.operation("GET", "/ready", summary="200 once streams exist and projections caught up", tag="operations",
                  response=ReadyOut, auth=False, errors=(503,))(ready)
    api.operation("GET", "/metrics", summary="Prometheus metrics", tag="operations", auth=False,
                  produces=("text/plain",))(metrics)
