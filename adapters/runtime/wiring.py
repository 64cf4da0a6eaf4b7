"""Which aggregates, projections and command handlers make up the system.

Kept apart from the container so adding a context touches one short list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from domain.base import InkAggregate
from domain.user import User
from projections.changes import Projection
from projections.users import UsersProjection

if TYPE_CHECKING:
    from adapters.runtime.container import Container


def aggregates() -> list[type[InkAggregate]]:
    return [User]


def projections() -> list[Projection]:
    return [UsersProjection()]


def wire_contexts(container: "Container") -> dict[str, Any]:
    """Command handlers beyond users, keyed by context name."""
    return {}


def register_routes(api: Any) -> None:
    """Routes of the contexts beyond auth and operations."""
