"""What ``/health`` and ``/ready`` ask of the running process (implemented by ``adapters.runtime``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    status: str
    position: int
    error: str | None = None
    error_position: int | None = None


class Probes(Protocol):
    def log_connected(self) -> bool: ...

    async def log_position(self) -> int: ...

    async def ping_read_store(self) -> None:
        """Raises when the read-model store does not answer."""
        ...

    def projections(self) -> dict[str, ProjectionStatus]: ...

    def ready(self) -> bool:
        """Streams exist and the projections caught up with the log as it was at start."""
        ...

    @property
    def ready_target(self) -> int: ...
