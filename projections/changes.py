"""Read-model changes: what a pure projector asks the store to do.

A projector maps one recorded event to a list of these; the store adapter
(PostgreSQL, or Mongo with version-guarded writes) applies them, together with
the projection's checkpoint, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import AsyncIterable, Iterable
from typing import Any, ClassVar, Protocol

from domain.recorded import Recorded


@dataclass(frozen=True, slots=True)
class Upsert:
    """Insert the row, or overwrite the given columns when ``key`` already exists."""

    table: str
    key: tuple[str, ...]
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Update:
    """Set ``fields`` on the rows matching every ``where`` column."""

    table: str
    where: dict[str, Any]
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete the rows matching every ``where`` column."""

    table: str
    where: dict[str, Any]


Change = Upsert | Update | Delete


class Projection(Protocol):
    """A pure projector: the same events always give the same changes."""

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]

    def changes(self, record: Recorded) -> list[Change]: ...


def touched(record: Recorded, **fields: Any) -> dict[str, Any]:
    """``fields`` and what every row keeps of the last event that changed it: its time, the
    aggregate's version, the log position (what read-your-writes and ETags follow)."""
    return {**fields, "updated_at": record.at, "version": record.version, "position": record.position}


def row_after(projection: Projection, records: Iterable[Recorded],
              row: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The one row a projection keeps for an aggregate, as it holds it after ``records`` (that
    aggregate's history, or the next stretch of it after the one that left ``row``): how an
    answer is built from the log before the read model has it."""
    for record in records:
        for change in projection.changes(record):
            if isinstance(change, Upsert):
                row = dict(change.row)
            elif isinstance(change, Update) and row is not None:
                row.update(change.fields)
    return row


async def row_after_pages(projection: Projection, pages: AsyncIterable[list[Recorded]]) -> dict[str, Any] | None:
    """``row_after`` a history read a batch at a time (``Repository.pages``), each batch let go
    before the next is read: the row is all that is kept, however long the history grew."""
    row: dict[str, Any] | None = None
    async for page in pages:
        row = row_after(projection, page, row)
        del page  # not held while the next batch is read
    return row
