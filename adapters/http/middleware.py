"""Request middlewares: observability, authentication, rate limiting."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from aiohttp import web

from adapters.http.api import ACTOR_KEY, TRACEPARENT_KEY
from adapters.http.keys import API, LIMITERS, METRICS, TOKENS, TRACING
from adapters.telemetry.tracing import current_trace_id, current_traceparent, extract
from adapters.http.errors import RateLimited, Unauthorized

log = structlog.get_logger("inkstream.http")


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observability_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Request id, trace span (continuing an incoming ``traceparent``), metrics, access log."""
    tracing, metrics = request.app[TRACING], request.app[METRICS]
    template = route_template(request)
    request_id = request.headers.get("X-Request-Id") or str(uuid.uuid4())
    started = time.perf_counter()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    status = 500
    try:
        with tracing.span(f"HTTP {request.method} {template}", extract(request.headers),
                            **{"http.method": request.method, "http.route": template}) as span:
            request[TRACEPARENT_KEY] = current_traceparent()
            structlog.contextvars.bind_contextvars(trace_id=current_trace_id())
            response = await handler(request)
            status = response.status
            span.set_attribute("http.status_code", status)
        if not response.prepared:  # a streamed export has sent its headers already
            response.headers["X-Request-Id"] = request_id
        return response
    finally:
        elapsed = time.perf_counter() - started
        if template not in ("/metrics",):
            metrics.http_requests.labels(request.method, template, str(status)).inc()
            metrics.http_duration.labels(request.method, template).observe(elapsed)
        if template not in ("/metrics", "/health", "/ready"):
            log.info("http.request", method=request.method, route=template, status=status,
                     ms=round(elapsed * 1000, 2))
        structlog.contextvars.unbind_contextvars("request_id", "trace_id")


def _needs_auth(request: web.Request) -> bool:
    if request.match_info.http_exception is not None:
        return False
    api = request.app[API]
    op = api.find(request.method, route_template(request))
    return op.auth if op is not None else request.path.startswith("/v1")


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if _needs_auth(request):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("a bearer token is required")
        request[ACTOR_KEY] = request.app[TOKENS].verify(token.strip())
    return await handler(request)


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/v1"):
        limiters = request.app[LIMITERS]
        user = request.get(ACTOR_KEY)
        if user:
            wait = limiters.user.take(f"user:{user}")
        else:
            wait = limiters.anonymous.take(f"addr:{request.remote}")
        if wait > 0:
            raise RateLimited("too many requests, slow down", retry_after=wait)
    return await handler(request)
