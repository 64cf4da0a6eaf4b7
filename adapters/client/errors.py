"""The SDK's exceptions: one class per problem ``code`` of the v1 contract.

Every error answer of the API is an RFC 9457 problem (``application/problem+json``)
whose ``code`` names its class here. An answer with an unknown code falls back
to the class of its status, and then to :class:`InkstreamError` itself.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any, ClassVar

import orjson

__all__ = [
    "InkstreamError",
    "BadRequestError",
    "UnauthorizedError",
    "TokenExpiredError",
    "ForbiddenError",
    "NotFoundError",
    "ConflictError",
    "PreconditionFailedError",
    "PayloadTooLargeError",
    "ValidationFailedError",
    "RateLimitedError",
    "UnavailableError",
    "error_from_answer",
    "parse_retry_after",
]


_DEFAULT: Any = object()  # "the class's own status", as opposed to None ("no answer")


class InkstreamError(Exception):
    """An error answer of the inkstream API (or, for ``UnavailableError``, no answer at all).

    ``status``: the HTTP status (None when the server could not be reached);
    ``code``: the problem code; ``detail``: the problem's detail;
    ``errors``: field errors ``[{"path": ..., "message": ...}]`` (empty when none);
    ``retry_after``: seconds from the ``Retry-After`` header, if any;
    ``body``: the whole decoded problem (or the raw text when it was not JSON).
    """

    default_code: ClassVar[str] = "error"
    default_status: ClassVar[int | None] = None

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = _DEFAULT,
        code: str | None = None,
        errors: list[dict[str, str]] | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        self.status: int | None = self.default_status if status is _DEFAULT else status
        self.code = code or self.default_code
        self.detail = detail
        self.errors: list[dict[str, str]] = list(errors or [])
        self.retry_after = retry_after
        self.body = body
        super().__init__(detail)

    def __str__(self) -> str:
        head = f"{self.status} {self.code}" if self.status is not None else self.code
        text = f"{head}: {self.detail}"
        if self.errors:
            text += " [" + "; ".join(f"{e.get('path') or '/'}: {e.get('message')}" for e in self.errors) + "]"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, detail={self.detail!r})"


class BadRequestError(InkstreamError):
    """400: malformed JSON, wrong types, unknown fields."""

    default_code, default_status = "bad_request", 400


class UnauthorizedError(InkstreamError):
    """401: no token, bad or malformed token, wrong credentials."""

    default_code, default_status = "unauthorized", 401


class TokenExpiredError(UnauthorizedError):
    """401: the token is past its ``exp`` (log in again)."""

    default_code, default_status = "token_expired", 401


class ForbiddenError(InkstreamError):
    """403: the resource belongs to someone else."""

    default_code, default_status = "forbidden", 403


class NotFoundError(InkstreamError):
    """404: no such resource (also 405 for a method a route does not have)."""

    default_code, default_status = "not_found", 404


class ConflictError(InkstreamError):
    """409: already exists, or a concurrent change."""

    default_code, default_status = "conflict", 409


class PreconditionFailedError(InkstreamError):
    """412: ``If-Match`` does not match the resource's current version."""

    default_code, default_status = "precondition_failed", 412


class PayloadTooLargeError(InkstreamError):
    """413: the body is over the server's limit."""

    default_code, default_status = "payload_too_large", 413


class ValidationFailedError(InkstreamError):
    """422: the data does not satisfy its schema, or invalid field values; see ``errors``."""

    default_code, default_status = "validation_failed", 422


class RateLimitedError(InkstreamError):
    """429: the per-user limit was hit; ``retry_after`` says when to try again."""

    default_code, default_status = "rate_limited", 429


class UnavailableError(InkstreamError):
    """503 (the log or a read-model store is unreachable), or the server could not be reached.

    Raised once the client's retries are used up. When no answer came at all
    (connection refused or dropped, timeout) ``status`` is None and the
    transport error is the ``__cause__``.
    """

    default_code, default_status = "unavailable", 503


_ALL: tuple[type[InkstreamError], ...] = (
    BadRequestError,
    UnauthorizedError,
    TokenExpiredError,
    ForbiddenError,
    NotFoundError,
    ConflictError,
    PreconditionFailedError,
    PayloadTooLargeError,
    ValidationFailedError,
    RateLimitedError,
    UnavailableError,
)
BY_CODE: dict[str, type[InkstreamError]] = {cls.default_code: cls for cls in _ALL}
BY_STATUS: dict[int, type[InkstreamError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    405: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    413: PayloadTooLargeError,
    422: ValidationFailedError,
    429: RateLimitedError,
    503: UnavailableError,
}


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds (fractions tolerated) or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_from_answer(status: int, headers: Any, raw: bytes) -> InkstreamError:
    """The exception for an error answer: by problem ``code``, else by status, else the base class."""
    body: Any
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = raw.decode("utf-8", "replace")
    problem = body if isinstance(body, dict) else {}
    code = problem.get("code") if isinstance(problem.get("code"), str) else None
    cls = BY_CODE.get(code or "") or BY_STATUS.get(status) or InkstreamError
    detail = problem.get("detail")
    if not isinstance(detail, str):
        detail = body if isinstance(body, str) and body else (problem.get("title") or f"HTTP {status}")
    raw_errors = problem.get("errors")
    errors = [
        {"path": str(e.get("path", "")), "message": str(e.get("message", ""))}
        for e in (raw_errors if isinstance(raw_errors, list) else [])
        if isinstance(e, dict)
    ]
    retry_after = parse_retry_after(headers.get("Retry-After") if headers is not None else None)
    return cls(str(detail), status=status, code=code or cls.default_code, errors=errors,
               retry_after=retry_after, body=body)
