"""The envelope of an event as the log recorded it.

Shared by the write side (aggregate loading, history, time travel) and the read
side (projections), so it lives in the domain and has no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Recorded:
    position: int
    aggregate_type: str
    aggregate_id: str
    type: str
    version: int
    at: datetime
    data: dict[str, Any]
    class_version: int = 1
    actor: str | None = None
    command_id: str | None = None
    traceparent: str | None = None
    headers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    size: int = field(default=0, compare=False, repr=False)
    """Bytes of the payload as the log stores it (what the write-side cache weighs)."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event decided by an aggregate, not yet in the log."""

    type: str
    version: int
    at: datetime
    data: dict[str, Any]
    class_version: int = 1
    actor: str | None = None
    traceparent: str | None = None
