"""Read-model tables in memory: applies ``projections.changes`` like the
PostgreSQL store does (upsert overwrites the given columns), for tests of
projectors and of anything that reads a read model."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from projections.changes import Change, Delete, Update, Upsert


class MemoryTables:
    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}

    def rows(self, table: str) -> list[dict[str, Any]]:
        return list(self.tables.get(table, {}).values())

    def apply(self, changes: Iterable[Change]) -> None:
        for change in changes:
            table = self.tables.setdefault(change.table, {})
            if isinstance(change, Upsert):
                key = tuple(change.row[k] for k in change.key)
                table.setdefault(key, {}).update(change.row)
            elif isinstance(change, Update):
                for row in table.values():
                    if all(row.get(k) == v for k, v in change.where.items()):
                        row.update(change.fields)
            elif isinstance(change, Delete):
                for key in [k for k, row in table.items() if all(row.get(c) == v for c, v in change.where.items())]:
                    del table[key]
            else:  # pragma: no cover
                raise TypeError(change)
