"""Domain errors: what the domain refuses, named in its own words.

They carry a reason (and, for validation, every field error) but nothing of
any transport: ``adapters/http/problems.py`` maps each type to its problem
code and status in one table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from domain.limits import MAX_JSON_DEPTH, MAX_JSON_INT, MIN_INT64, encoded_size


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


MAX_LISTED_ERRORS = 1000
"""Field errors one answer lists. Beyond that a list only costs: a 1 MiB body of
``[1,1,1,…]`` or of NUL strings has half a million errors, and building, sorting and
sending them all held the event loop for seconds and answered 40 MB that nobody reads."""


def _by_path(error: FieldError) -> tuple[str, str]:
    return (error.path, error.message)


class Listed(list[FieldError]):
    """Errors already sorted and cut to ``MAX_LISTED_ERRORS`` (a note included): kept as they are."""


_MORE = f"more than {MAX_LISTED_ERRORS} errors;"
_FIRST = f"only the first {MAX_LISTED_ERRORS} by path are listed"
"""The two notes' words: a list cut short, and a list counted whole and cut (``listed``)."""


def _is_note(error: FieldError) -> bool:
    """A note of a list already cut (read back from the validator's worker, or joined to others)."""
    return error.path == "" and (error.message.startswith(_MORE) or error.message.endswith(_FIRST))


def listed(errors: list[FieldError], total: int | None = None) -> list[FieldError]:
    """``errors`` sorted by path, at most ``MAX_LISTED_ERRORS`` of them and a root note
    saying how many there were (``total``, when the caller counted more than it kept)."""
    if isinstance(errors, Listed):
        return errors
    if any(_is_note(e) for e in errors):  # a list already cut, joined to others: one note, "more than"
        return cut_short([e for e in errors if not _is_note(e)], more=True)
    count = len(errors) if total is None else total
    kept = sorted(errors, key=_by_path)
    if count <= MAX_LISTED_ERRORS and len(kept) <= MAX_LISTED_ERRORS:
        return Listed(kept)
    note = FieldError("", f"{count} errors; {_FIRST}")
    return Listed(sorted([note, *kept[:MAX_LISTED_ERRORS]], key=_by_path))


def cut_short(errors: list[FieldError], *, more: bool = False) -> list[FieldError]:
    """What a check that stopped looking after ``MAX_LISTED_ERRORS + 1`` errors lists: the first
    ``MAX_LISTED_ERRORS`` it found, sorted by path, with a root note that there are more (``more``:
    there are, however few are left here)."""
    if len(errors) <= MAX_LISTED_ERRORS and not more:
        return Listed(sorted(errors, key=_by_path))
    kept = errors[:MAX_LISTED_ERRORS]
    note = FieldError("", f"{_MORE} only {len(kept)} of them are listed")
    return Listed(sorted([note, *kept], key=_by_path))


class ValidationFailed(DomainError):
    """Values break the rules; ``errors`` lists them by JSON Pointer (all of them, up to
    ``MAX_LISTED_ERRORS`` and a note)."""

    def __init__(self, reason: str = "", errors: list[FieldError] | None = None) -> None:
        self.errors = listed(errors or [])  # a list already cut (``Listed``, its note included) is kept
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


def _scalar_problem(item: object) -> str | None:
    if isinstance(item, str):
        return unstorable_reason(item)
    if item is None or isinstance(item, bool):
        return None
    if isinstance(item, int):
        return None if MIN_INT64 <= item <= MAX_JSON_INT else f"integers must be from {MIN_INT64} to {MAX_JSON_INT}"
    if isinstance(item, float):
        return None if math.isfinite(item) else "numbers must be finite"
    return "must be a JSON value"


def storable_errors(value: object, path: str = "") -> list[FieldError]:
    """Where ``value`` holds what the log or the read models cannot store, sorted by path
    (it stops looking after ``MAX_LISTED_ERRORS`` of them, which are then not the first by
    path but the first it found: see ``cut_short``).

    PostgreSQL ``text`` and ``jsonb`` refuse NUL characters and the JSON
    encoder refuses lone surrogates, integers beyond 64 bits and containers
    nested deeper than its recursion limit (and writes NaN as null); an event
    carrying any of these would fail to append or halt its projection for
    good, so such values are refused before they reach the log. Nesting is
    bounded by ``MAX_JSON_DEPTH`` (``value`` itself, when a container, is
    level 1). Iterative, so a deeply nested document cannot exhaust the stack;
    a node's path is spelled out only when it is wrong.
    """
    errors: list[FieldError] = []
    Link = tuple[object, object] | None  # (parent link, key or index)

    def where(link: Link) -> str:
        tokens: list[str] = []
        while link is not None:
            link, token = link  # type: ignore[assignment]
            tokens.append(str(token).replace("~", "~0").replace("/", "~1"))
        return path + "".join("/" + t for t in reversed(tokens))

    stack: list[tuple[object, int, Link]] = [(value, 1, None)]
    while stack and len(errors) <= MAX_LISTED_ERRORS:
        item, depth, link = stack.pop()
        is_dict = isinstance(item, dict)
        if not is_dict and not isinstance(item, list):
            problem = _scalar_problem(item)
            if problem is not None:
                errors.append(FieldError(where(link), problem))
        elif depth > MAX_JSON_DEPTH:
            errors.append(FieldError(where(link), f"nested deeper than {MAX_JSON_DEPTH} levels"))
        else:
            entries = item.items() if is_dict else enumerate(item)  # type: ignore[union-attr, arg-type]
            bad_keys = False
            for key, sub in entries:
                if is_dict and (not isinstance(key, str) or unstorable_reason(key) is not None):
                    # The key cannot be part of a path that must itself be encodable: said once per object
                    # (a thousand such keys must not fill the list and hide the rest of the document)
                    if not bad_keys:
                        bad_keys = True
                        errors.append(FieldError(where(link), "keys must be strings without NUL characters or "
                                                              "lone surrogates"))
                elif sub is None or sub is True or sub is False:
                    continue  # always storable: no need to visit it
                else:
                    stack.append((sub, depth + 1, (link, key)))
    return cut_short(errors)


def ensure_storable(value: object, path: str, what: str) -> None:
    """Refuse ``value``, listing every part of it the read models cannot store."""
    errors = storable_errors(value, path)
    if errors:
        raise ValidationFailed(f"{what} cannot be stored", errors)


def size_error(path: str, what: str, size: int, limit: int) -> FieldError | None:
    """A 422 entry naming the limit when ``size`` (bytes as JSON) is over it."""
    if size <= limit:
        return None
    return FieldError(path, f"{what} takes {size} bytes as JSON, over the limit of {limit} bytes")


def ensure_size(value: object, path: str, what: str, limit: int) -> int:
    """``value``'s size as JSON, or 422 naming the limit. Call after ``ensure_storable``."""
    size = encoded_size(value)
    error = size_error(path, what, size, limit)
    if error is not None:
        raise ValidationFailed(error.message, [error])
    return size
