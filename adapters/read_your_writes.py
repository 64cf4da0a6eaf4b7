"""Read-your-writes in front of the read model, for every query and every caller.

With ``consistency=eventual`` a query answers at once; with ``min_position=N``
it waits for the read model to reach N; with neither it waits for the log's
last position at query time, so it reflects every command whose answer arrived
before the query was sent. Waits are bounded (``INKSTREAM_READ_WAIT_SECONDS``),
then ``Unavailable`` (503). The HTTP routes, the CLI and the bucket-emptiness
check all wait here, on the projections' own positions (no polling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from projections.read_model import BadQuery, ProjectionPositions, ReadModel

Consistency = Literal["eventual", "strong"]


class LogTail(Protocol):
    async def last_position(self) -> int: ...


class ReadYourWrites:
    def __init__(self, model: ReadModel, positions: ProjectionPositions, log: LogTail, wait_seconds: float) -> None:
        self.model = model
        self.positions = positions
        self._log = log
        self._wait = wait_seconds

    async def read(
        self,
        projections: Sequence[str],
        min_position: int | None = None,
        consistency: Consistency | None = None,
    ) -> ReadModel:
        """The read model once ``projections`` reflect what the caller asked for."""
        if consistency == "eventual":
            return self.model
        last = await self._log.last_position()
        if min_position is not None and min_position > last:
            raise BadQuery(f"min_position {min_position} is beyond the end of the log ({last})")
        await self.positions.wait(last if min_position is None else min_position, projections, self._wait)
        return self.model

    async def is_empty(self, bucket_id: str) -> bool:
        """``commands.buckets.BucketContents``: decided on the read model once it has caught up with the log."""
        model = await self.read(("buckets", "blobs"))
        return await model.bucket_is_empty(bucket_id)
