"""``/health``, ``/ready`` and ``/metrics``.

The routes ask a ``Probes`` object (``adapters.http.probes``, implemented by
the runtime) what they report, so they know nothing of how the log or the
read-model store is reached. They answer anyone, so they name each failing
check and its state only: an exception's text (addresses, ports, the value
that broke a projection) goes to the log, where operators look, and never
into the answer.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from adapters.http.api import Api, json_response
from adapters.http.keys import METRICS, PROBES
from adapters.http.models import HealthOut, ReadyOut
from adapters.http.probes import Probes

log = structlog.get_logger("inkstream.health")


def package_version() -> str:
    try:
        return version("inkstream")
    except PackageNotFoundError:
        return "0.0.0"


def _down(check: str, error: str) -> dict[str, Any]:
    """The answer says "down"; the log says why."""
    log.warning("health.check_failed", check=check, error=error)
    return {"status": "down"}


def _reason(exc: BaseException) -> str:
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    return f"{reason} (from {type(cause).__name__}: {cause})" if cause is not None else reason


async def _check_nats(probes: Probes) -> dict[str, Any]:
    if not probes.log_connected():
        return _down("nats", "not connected")
    try:
        async with asyncio.timeout(1.5):
            last = await probes.log_position()
    except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
        return _down("nats", _reason(exc))
    return {"status": "up", "last_position": last}


async def _check_postgres(probes: Probes) -> dict[str, Any]:
    try:
        async with asyncio.timeout(1.5):
            await probes.ping_read_store()
    except Exception as exc:  # noqa: BLE001
        return _down("postgres", _reason(exc))
    return {"status": "up"}


def _check_projections(probes: Probes, *, log_halts: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, s in probes.projections().items():
        out[name] = {"status": s.status, "position": s.position}
        if s.status == "halted" and log_halts:
            log.warning("health.check_failed", check=f"projection:{name}", error=s.error,
                        error_position=s.error_position)
    return out


def _halted(projections: dict[str, Any]) -> list[str]:
    return [f"projection:{name}" for name, p in projections.items() if p["status"] == "halted"]


async def health(request: web.Request) -> web.Response:
    """200 healthy, or 503 unhealthy naming each failing check."""
    probes = request.app[PROBES]
    nats_check, pg_check = await asyncio.gather(_check_nats(probes), _check_postgres(probes))
    projections = _check_projections(probes)
    checks: dict[str, Any] = {"nats": nats_check, "postgres": pg_check, "projections": projections}
    failing = [name for name in ("nats", "postgres") if checks[name]["status"] != "up"]
    failing += _halted(projections)
    body = {
        "status": "unhealthy" if failing else "healthy",
        "version": package_version(),
        "checks": checks,
    }
    if failing:
        body["failing"] = failing
    return json_response(body, 503 if failing else 200)


async def ready(request: web.Request) -> web.Response:
    """200 once caught up with the log as it was at start, and while no projection is halted:
    a halted projection serves stale reads for good, so traffic should go elsewhere."""
    probes = request.app[PROBES]
    projections = _check_projections(probes, log_halts=False)  # /health logs why
    halted = _halted(projections)
    is_ready = probes.ready() and not halted
    body: dict[str, Any] = {"ready": is_ready, "target_position": probes.ready_target,
                            "projections": {name: p["position"] for name, p in projections.items()}}
    if halted:
        body["failing"] = halted
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
