"""The one ownership rule set: a user reaches only what they own.

Handlers and queries call these instead of comparing ids themselves, so the
rule cannot drift between routes.
"""

from __future__ import annotations

from domain.errors import Forbidden


def ensure_owner(actor: str | None, owner_id: str | None, what: str = "resource") -> None:
    """Refuse (403) when ``actor`` does not own the resource."""
    if actor is None or owner_id != actor:
        raise Forbidden(f"this {what} belongs to another user")


def ensure_same_user(actor: str | None, user_id: str | None) -> None:
    """A body ``user_id`` must be the acting user's own id when given."""
    if user_id is not None and user_id != actor:
        raise Forbidden("user_id does not match the authenticated user")
