"""An in-memory ``commands.ports.SnapshotStore``: snapshots kept as the JSON bytes the KV bucket would hold.

Each ``get`` decodes the bytes afresh, so a loaded aggregate never shares
objects with the one the snapshot was taken from, as over the wire.
"""

from __future__ import annotations

import orjson

from domain.snapshot import Taken


class MemorySnapshots:
    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], bytes] = {}
        self.reads = 0

    async def get(self, aggregate_type: str, aggregate_id: str) -> Taken | None:
        self.reads += 1
        raw = self.kept.get((aggregate_type, aggregate_id))
        if raw is None:
            return None
        try:
            return Taken.from_json(orjson.loads(raw), size=len(raw))
        except orjson.JSONDecodeError:
            return None

    def keep(self, aggregate_type: str, aggregate_id: str, taken: Taken) -> None:
        self.kept[(aggregate_type, aggregate_id)] = orjson.dumps(taken.to_json())
