"""Errors of the HTTP transport itself: what a request got wrong before any command ran.

Domain errors (``domain.errors``) and port failures (``commands.ports``) say
what went wrong in the system's own words; these say what went wrong with the
request (its body, its token, its rate). ``problems.py`` maps all of them.
"""

from __future__ import annotations

from domain.errors import FieldError


class RequestError(Exception):
    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        super().__init__(reason)


class BadRequest(RequestError):
    """Malformed JSON, wrong types, unknown fields, bad query parameters."""

    def __init__(self, reason: str = "", errors: list[FieldError] | None = None) -> None:
        self.errors = errors
        super().__init__(reason)


class Unauthorized(RequestError):
    """No token, a bad one, or a token for no one."""


class TokenExpired(RequestError):
    """A good token past its ``exp``."""


class RateLimited(RequestError):
    def __init__(self, reason: str = "", retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(reason)


class PayloadTooLarge(RequestError):
    """A body (or what it would write) over a configured limit."""
