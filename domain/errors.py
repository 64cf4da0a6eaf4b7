"""Domain errors: one type per problem code of the API contract.

The HTTP layer maps each ``code`` to a status in exactly one place; the domain
only says what went wrong and why. ``detail`` always begins with ``phrase``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One validation failure: a JSON Pointer and a readable message."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class DomainError(Exception):
    code: ClassVar[str] = "internal"
    phrase: ClassVar[str] = "internal error"

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        return f"{self.phrase}: {self.reason}" if self.reason else self.phrase


class BadRequest(DomainError):
    code = "bad_request"
    phrase = "bad request"


class Unauthorized(DomainError):
    code = "unauthorized"
    phrase = "unauthorized"


class TokenExpired(DomainError):
    code = "token_expired"
    phrase = "token expired"


class Forbidden(DomainError):
    code = "forbidden"
    phrase = "forbidden"


class NotFound(DomainError):
    code = "not_found"
    phrase = "not found"


class Conflict(DomainError):
    code = "conflict"
    phrase = "conflict"


class ConcurrencyError(Conflict):
    """The aggregate changed since it was loaded (the log's expected-sequence check)."""


class PreconditionFailed(DomainError):
    code = "precondition_failed"
    phrase = "precondition failed"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    phrase = "payload too large"


class ValidationFailed(DomainError):
    code = "validation_failed"
    phrase = "validation failed"

    def __init__(self, reason: str = "", errors: list[FieldError] | None = None) -> None:
        self.errors = sorted(errors or [], key=lambda e: (e.path, e.message))
        super().__init__(reason)


class RateLimited(DomainError):
    code = "rate_limited"
    phrase = "rate limit exceeded"

    def __init__(self, reason: str = "", retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(reason)


class Unavailable(DomainError):
    code = "unavailable"
    phrase = "unavailable"

    def __init__(self, reason: str = "", retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(reason)


def invalid(path: str, message: str) -> ValidationFailed:
    """A one-field validation failure, the common case for invalid values."""
    return ValidationFailed(message, [FieldError(path, message)])
