"""``commands.ports.CommandIndex`` on an in-memory log: the real ``commands`` projection applied
to the log's events up to a checkpoint the test moves (a projector that lags), in memory tables."""

from __future__ import annotations

from projections.commands import TABLE, CommandsProjection
from tests.support.memory_store import MemoryEventStore
from tests.support.memory_tables import MemoryTables


class MemoryCommandIndex:
    def __init__(self, store: MemoryEventStore, checkpoint: int | None = None) -> None:
        self._store = store
        self.checkpoint = checkpoint
        """How far the index has read the log; None: all of it, always."""
        self.lookups = 0

    async def command_position(self, aggregate_type: str, aggregate_id: str, command_id: str) -> tuple[int, int | None]:
        self.lookups += 1
        checkpoint = len(self._store.records) if self.checkpoint is None else self.checkpoint
        tables = MemoryTables()
        for record in self._store.records[:checkpoint]:
            tables.apply(CommandsProjection().changes(record))
        found = [r["position"] for r in tables.rows(TABLE) if r["command_id"] == command_id
                 and r["aggregate_id"] == aggregate_id and r["aggregate_type"] == aggregate_type]
        return checkpoint, (min(found) if found else None)
