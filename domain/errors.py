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


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored in the read models, or None."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def storable_errors(value: object, path: str = "") -> list[FieldError]:
    """Where ``value`` holds text the read models cannot store, sorted by path.

    PostgreSQL ``text`` and ``jsonb`` refuse NUL characters and the JSON
    encoder refuses lone surrogates; an event carrying either would halt its
    projection for good, so such values are refused before they reach the log.
    Iterative, so a deeply nested document cannot exhaust the stack.
    """
    errors: list[FieldError] = []
    stack: list[tuple[str, object]] = [(path, value)]
    while stack:
        at, item = stack.pop()
        if isinstance(item, str):
            problem = unstorable_reason(item)
            if problem is not None:
                errors.append(FieldError(at, problem))
        elif isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str) or unstorable_reason(key) is not None:
                    # The key cannot be part of a path that must itself be encodable.
                    errors.append(FieldError(at, "keys must be strings without NUL characters or lone surrogates"))
                    continue
                stack.append((f"{at}/{key.replace('~', '~0').replace('/', '~1')}", sub))
        elif isinstance(item, list):
            stack.extend((f"{at}/{i}", sub) for i, sub in enumerate(item))
    return sorted(set(errors), key=lambda e: (e.path, e.message))


def ensure_storable(value: object, path: str, what: str) -> None:
    """422 listing every unstorable string in ``value``."""
    errors = storable_errors(value, path)
    if errors:
        raise ValidationFailed(f"{what} cannot be stored", errors)
