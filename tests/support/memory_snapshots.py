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
        """Latest snapshots."""
        self.rungs: dict[tuple[str, str, int], bytes] = {}
        self.reads = 0

    async def get(self, aggregate_type: str, aggregate_id: str, rung: int = 0) -> Taken | None:
        self.reads += 1
        raw = self.rungs.get((aggregate_type, aggregate_id, rung)) if rung else self.kept.get((aggregate_type, aggregate_id))
        if raw is None:
            return None
        try:
            return Taken.from_json(orjson.loads(raw), size=len(raw))
        except orjson.JSONDecodeError:
            return None

    def keep(self, aggregate_type: str, aggregate_id: str, taken: Taken, rung: int = 0,
             max_bytes: int | None = None) -> bool:
        raw = orjson.dumps(taken.to_json())
        if max_bytes is not None and len(raw) > max_bytes:
            return False
        if rung:
            self.rungs[(aggregate_type, aggregate_id, rung)] = raw
        else:
            self.kept[(aggregate_type, aggregate_id)] = raw
        return True
