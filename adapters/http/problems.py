"""The one place that maps errors to HTTP: RFC 9457 problem+json.

Every domain error type carries its problem ``code``; this module owns the
status of each code. Unknown exceptions become a 500 that names a correlation
id (also in the log) and never a traceback.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import structlog
from aiohttp import web

from adapters.postgres.pool import OUTAGE_ERRORS
from domain.errors import DomainError, RateLimited, Unavailable

log = structlog.get_logger("inkstream.http")

PROBLEM_TYPE = "https://inkstream.dev/problems/"

STATUS: dict[str, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "token_expired": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "precondition_failed": 412,
    "payload_too_large": 413,
    "validation_failed": 422,
    "rate_limited": 429,
    "unavailable": 503,
}

TITLES: dict[str, str] = {
    "bad_request": "Bad Request",
    "unauthorized": "Unauthorized",
    "token_expired": "Token Expired",
    "forbidden": "Forbidden",
    "not_found": "Not Found",
    "conflict": "Conflict",
    "precondition_failed": "Precondition Failed",
    "payload_too_large": "Payload Too Large",
    "validation_failed": "Validation Failed",
    "rate_limited": "Too Many Requests",
    "unavailable": "Service Unavailable",
    "internal": "Internal Server Error",
}


def problem(
    code: str,
    detail: str,
    *,
    status: int | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
) -> web.Response:
    status = status or STATUS.get(code, 500)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": TITLES.get(code, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/problem+json", headers=headers
    )


def from_domain_error(error: DomainError, path: str | None = None) -> web.Response:
    headers: dict[str, str] = {}
    if isinstance(error, (RateLimited, Unavailable)):
        headers["Retry-After"] = str(max(1, int(round(error.retry_after + 0.499))))
    field_errors = getattr(error, "errors", None)
    errors = [e.as_dict() for e in field_errors] if field_errors is not None else None
    return problem(error.code, error.detail, errors=errors, headers=headers, instance=path)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "payload_too_large"}


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as error:
        return from_domain_error(error, request.path)
    except web.HTTPRequestEntityTooLarge:
        return problem("payload_too_large", "payload too large: the body is over the configured limit")
    except web.HTTPMethodNotAllowed as exc:
        return problem("not_found", f"not found: {request.method} is not allowed here", status=405,
                       headers={"Allow": ", ".join(sorted(exc.allowed_methods))})
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "bad_request")
        phrase = {"not_found": "not found", "bad_request": "bad request"}.get(code, code.replace("_", " "))
        return problem(code, f"{phrase}: {exc.reason.lower()}", status=exc.status)
    except OUTAGE_ERRORS as exc:
        log.warning("http.store_unavailable", error=str(exc) or type(exc).__name__, path=request.path)
        return from_domain_error(Unavailable("a read-model store is unreachable"), request.path)
    except Exception:
        correlation_id = str(uuid.uuid4())
        log.exception("http.unhandled", correlation_id=correlation_id, path=request.path, method=request.method)
        return problem(
            "internal", f"internal error: reference {correlation_id}", status=500,
            extra={"correlation_id": correlation_id},
        )
