"""Domain errors: what the domain refuses, named in its own words.

They carry a reason (and, for validation, every field error) but nothing of
any transport: ``adapters/http/problems.py`` maps each type to its problem
code and status in one table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One validation failure: a JSON Pointer and a readable message."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class DomainError(Exception):
    """Something the domain refuses, in its own words; adapters decide how to tell a client."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(reason)


class NotFound(DomainError):
    """No such thing (or it was deleted): unknown ids and deleted resources look alike."""


class Forbidden(DomainError):
    """The acting user may not touch this: it is someone else's."""


class Conflict(DomainError):
    """The change contradicts what exists: a taken email, an existing version, a non-empty bucket."""


class ConcurrencyError(Conflict):
    """The aggregate changed since it was loaded (the log's expected-sequence check)."""


class PreconditionFailed(DomainError):
    """The writer expected another version of the aggregate (``If-Match``)."""


class ValidationFailed(DomainError):
    """Values break the rules; ``errors`` lists every one of them by JSON Pointer."""

    def __init__(self, reason: str = "", errors: list[FieldError] | None = None) -> None:
        self.errors = sorted(errors or [], key=lambda e: (e.path, e.message))
        super().__init__(reason)


class WrongCredentials(DomainError):
    """The email is unknown or the password wrong (deliberately the same error)."""


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
    """Refuse ``value`` listing every string in it the read models cannot store."""
    errors = storable_errors(value, path)
    if errors:
        raise ValidationFailed(f"{what} cannot be stored", errors)
