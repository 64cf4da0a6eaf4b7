"""The one place that maps errors to HTTP: RFC 9457 problem+json.

Domain errors, port failures and request errors say what went wrong in their
own words; the ``PROBLEMS`` table below gives each type its problem ``code``,
status and the phrase its ``detail`` begins with. Unknown exceptions become a
500 that names a correlation id (also in the log) and never a traceback.
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

import orjson
import structlog
from aiohttp import web

from adapters.http.errors import BadRequest, PayloadTooLarge, RateLimited, TokenExpired, Unauthorized
from adapters.live.hub import AlreadySubscribed, SinceOutOfRange, TooManyLive
from adapters.postgres.pool import OUTAGE_ERRORS
from commands.ports import EventTooLarge, Unavailable
from domain import errors as domain
from projections.read_model import BadQuery

log = structlog.get_logger("inkstream.http")

PROBLEM_TYPE = "https://inkstream.dev/problems/"


class Kind(NamedTuple):
    code: str
    status: int
    phrase: str
    title: str


BAD_REQUEST = Kind("bad_request", 400, "bad request", "Bad Request")
UNAUTHORIZED = Kind("unauthorized", 401, "unauthorized", "Unauthorized")
TOKEN_EXPIRED = Kind("token_expired", 401, "token expired", "Token Expired")
FORBIDDEN = Kind("forbidden", 403, "forbidden", "Forbidden")
NOT_FOUND = Kind("not_found", 404, "not found", "Not Found")
CONFLICT = Kind("conflict", 409, "conflict", "Conflict")
PRECONDITION_FAILED = Kind("precondition_failed", 412, "precondition failed", "Precondition Failed")
PAYLOAD_TOO_LARGE = Kind("payload_too_large", 413, "payload too large", "Payload Too Large")
VALIDATION_FAILED = Kind("validation_failed", 422, "validation failed", "Validation Failed")
RATE_LIMITED = Kind("rate_limited", 429, "rate limit exceeded", "Too Many Requests")
UNAVAILABLE = Kind("unavailable", 503, "unavailable", "Service Unavailable")
INTERNAL = Kind("internal", 500, "internal error", "Internal Server Error")

# Most specific first: the first matching type wins.
PROBLEMS: tuple[tuple[type[Exception], Kind], ...] = (
    (domain.NotFound, NOT_FOUND),
    (domain.Forbidden, FORBIDDEN),
    (domain.Conflict, CONFLICT),
    (domain.PreconditionFailed, PRECONDITION_FAILED),
    (domain.ValidationFailed, VALIDATION_FAILED),
    (domain.WrongCredentials, UNAUTHORIZED),
    (BadRequest, BAD_REQUEST),
    (BadQuery, BAD_REQUEST),
    (Unauthorized, UNAUTHORIZED),
    (TokenExpired, TOKEN_EXPIRED),
    (RateLimited, RATE_LIMITED),
    (SinceOutOfRange, BAD_REQUEST),
    (TooManyLive, RATE_LIMITED),
    (AlreadySubscribed, CONFLICT),
    (PayloadTooLarge, PAYLOAD_TOO_LARGE),
    (EventTooLarge, PAYLOAD_TOO_LARGE),
    (Unavailable, UNAVAILABLE),
)
KINDS = (BAD_REQUEST, UNAUTHORIZED, TOKEN_EXPIRED, FORBIDDEN, NOT_FOUND, CONFLICT, PRECONDITION_FAILED,
         PAYLOAD_TOO_LARGE, VALIDATION_FAILED, RATE_LIMITED, UNAVAILABLE)
KNOWN = tuple(t for t, _ in PROBLEMS)
STATUS: dict[str, int] = {k.code: k.status for k in KINDS}
_BY_CODE = {k.code: k for k in (*KINDS, INTERNAL)}


def kind_of(error: Exception) -> Kind:
    for error_type, kind in PROBLEMS:
        if isinstance(error, error_type):
            return kind
    return INTERNAL


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
    kind = _BY_CODE.get(code, INTERNAL)
    status = status or kind.status
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": kind.title,
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


def from_error(error: Exception, path: str | None = None) -> web.Response:
    """The problem answer of a known error type (see ``PROBLEMS``)."""
    kind = kind_of(error)
    reason = str(getattr(error, "reason", None) or error)
    detail = f"{kind.phrase}: {reason}" if reason else kind.phrase
    headers: dict[str, str] = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(round(retry_after + 0.499))))
    field_errors = getattr(error, "errors", None)
    errors = [e.as_dict() for e in field_errors] if field_errors is not None else None
    return problem(kind.code, detail, errors=errors, headers=headers, instance=path)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "payload_too_large"}


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except KNOWN as error:
        return from_error(error, request.path)
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
        return from_error(Unavailable("a read-model store is unreachable"), request.path)
    except Exception:
        correlation_id = str(uuid.uuid4())
        log.exception("http.unhandled", correlation_id=correlation_id, path=request.path, method=request.method)
        return problem(
            "internal", f"internal error: reference {correlation_id}", status=500,
            extra={"correlation_id": correlation_id},
        )
