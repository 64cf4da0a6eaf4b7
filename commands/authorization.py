"""The one ownership rule set: a user reaches only what they own.

Handlers and queries call these instead of comparing ids themselves, so the
rule cannot drift between routes.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from domain.errors import Forbidden, NotFound, PreconditionFailed


def ensure_owner(actor: str | None, owner_id: str | None, what: str = "resource") -> None:
    """Refuse (403) when ``actor`` does not own the resource."""
    if actor is None or owner_id != actor:
        raise Forbidden(f"this {what} belongs to another user")


def ensure_same_user(actor: str | None, user_id: str | None) -> None:
    """A body ``user_id`` must be the acting user's own id when given."""
    if user_id is not None and user_id != actor:
        raise Forbidden("user_id does not match the authenticated user")


def require_actor(actor: str | None) -> str:
    """The acting user's id; an anonymous command is refused."""
    if actor is None:
        raise Forbidden("an authenticated user is required")
    return actor


def ensure_version(current_version: int, expected_version: int | None) -> None:
    """``If-Match``: refuse (412) a write based on another version."""
    if expected_version is not None and expected_version != current_version:
        raise PreconditionFailed(f"the resource is at version {current_version}, not {expected_version}")


class Owned(Protocol):
    owner_id: str
    deleted: bool
    version: int


O = TypeVar("O", bound=Owned)


def changeable(actor: str | None, what: str, resource_id: str, current: O | None, expected_version: int | None) -> O:
    """The resource a change may be based on: live (404), the actor's (403), at the expected version (412)."""
    if current is None or current.deleted:
        raise NotFound(f"{what} {resource_id}")
    ensure_owner(actor, current.owner_id, what)
    ensure_version(current.version, expected_version)
    return current
