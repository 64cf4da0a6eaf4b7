"""Read-model rows this process has read, kept until a projector's commit says they changed.

Why: a ``GET`` of one row (``/v1/auth/me``, ``/v1/blobs/{id}``) cost a round
trip to PostgreSQL even when nothing had changed it, and that round trip (the
send that wakes PostgreSQL on the same cores, its answer) was most of what such
a request cost.

Why it is exact, and not merely fresh-ish:

* Every change to a read-model row is made by a projector's commit, and that
  commit's rows notice names the rows it touched (``changed_rows``), just
  before the position it moved (``adapters/postgres/projector.py``). A
  rebuild's swap and a migration name everything. PostgreSQL delivers
  notifications in commit order, so by the time the positions watch has heard
  that a projection reached position N, it has heard of every row that
  projection changed up to N, and dropped those rows here first. Read-your-writes
  waits on those positions, so a row found here is the row PostgreSQL holds at
  the position waited for.
* A row read from PostgreSQL is kept only if nothing touching it was heard
  while the query was out: a commit heard before the query was sent is in the
  query's snapshot; one heard after may not be, so the row is not kept.
* While the watch cannot hear PostgreSQL (a lost connection, before it first
  connects) nothing is served or kept, and everything kept is dropped: the
  notifications of that time are lost. So is everything whenever a position is
  learnt by reading the checkpoints rather than from a notification.

Only what a query reads by one key column is kept (``keep_table``); the rest of
the read model is read as before. Memory is bounded by ``max_bytes`` of estimated
weight, least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from projections.changes import Change, Upsert

T = TypeVar("T")

EVERYTHING = "*"
EVERYTHING_CHANGED = orjson.dumps(EVERYTHING)  # what a rebuild's swap says: every row may differ
# NOTIFY payloads must stay under 8,000 bytes; the notice's "name:position" goes first.
MAX_CHANGED_BYTES = 7_000
# A row heavier than this share of the cache is read from PostgreSQL every time.
LARGEST_SHARE = 64


def changed_rows(changes: Iterable[Change]) -> bytes:
    """What a commit's NOTIFY says it changed: ``{table: {column: [values]}}``, a table as
    ``"*"`` when its rows were picked by more than one column or by a value that is not a
    string, and every table as ``"*"`` when the list would not fit in a notification."""
    tables: dict[str, dict[str, set[str]] | str] = {}
    for change in changes:
        if tables.get(change.table) == EVERYTHING:
            continue
        picked = change.where if not isinstance(change, Upsert) else {k: change.row.get(k) for k in change.key}
        value = next(iter(picked.values())) if len(picked) == 1 else None
        if not isinstance(value, str):
            tables[change.table] = EVERYTHING
            continue
        columns = tables.setdefault(change.table, {})
        assert isinstance(columns, dict)
        columns.setdefault(next(iter(picked)), set()).add(value)
    encoded = orjson.dumps(
        {t: c if isinstance(c, str) else {k: sorted(v) for k, v in c.items()} for t, c in tables.items()}
    )
    # our own few table names always fit
    return encoded if len(encoded) <= MAX_CHANGED_BYTES else orjson.dumps({t: EVERYTHING for t in tables})


@dataclass(slots=True, eq=False)  # each read is itself: two reads of one row are not the same read
class _Read:
    """A query out to PostgreSQL for one row; ``stale`` once a change to it was heard."""

    stale: bool = False


@dataclass(slots=True)
class _Kept:
    row: Any
    weight: int
    table_generation: int


@dataclass
class RowCache:
    max_bytes: int
    _columns: dict[str, str] = field(default_factory=dict)  # table -> the column its rows are kept by
    _rows: OrderedDict[tuple[str, str], _Kept] = field(default_factory=OrderedDict)
    _table_generations: dict[str, int] = field(default_factory=dict)
    _reads: dict[tuple[str, str], list[_Read]] = field(default_factory=dict)
    _bytes: int = 0
    _hearing: bool = False
    hits: int = 0
    misses: int = 0

    def keep_table(self, table: str, column: str) -> None:
        """Rows of ``table`` are kept by ``column`` (the one a query reads them by)."""
        self._columns[table] = column
        self._table_generations.setdefault(table, 0)

    # -- reading ---------------------------------------------------------------------------------

    async def row(self, table: str, key: str, fetch: Callable[[], Awaitable[tuple[T, int] | None]]) -> T | None:
        """The row of ``table`` whose kept column is ``key``: from here when nothing has changed
        it since it was read, else from ``fetch`` (the row and its weight in bytes), kept when
        nothing changed it meanwhile. A missing row is not kept: what does not exist costs
        nothing to remember."""
        at = (table, key)
        kept = self._rows.get(at)
        if kept is not None:
            if kept.table_generation == self._table_generations[table]:
                self._rows.move_to_end(at)
                self.hits += 1
                return kept.row
            self._drop(at)
        self.misses += 1
        if not self._hearing or table not in self._columns:
            found = await fetch()
            return None if found is None else found[0]
        read = _Read()
        self._reads.setdefault(at, []).append(read)
        generation = self._table_generations[table]
        try:
            found = await fetch()
        finally:
            reads = self._reads[at]
            reads.remove(read)
            if not reads:
                del self._reads[at]
        if found is None:
            return None
        if not read.stale and self._hearing and generation == self._table_generations[table]:
            self._put(at, found[0], found[1], generation)
        return found[0]

    # -- what the positions watch hears ----------------------------------------------------------

    def hearing(self, hearing: bool) -> None:
        """The watch hears PostgreSQL's notifications (or stopped hearing them): either way,
        what was kept may have changed unheard."""
        self.forget_everything()
        self._hearing = hearing

    def changed(self, payload: bytes | str) -> None:
        """A commit's ``changed_rows``: drop what it touched, and mark queries out for it stale.
        Anything not in that shape (another writer's notice) counts as "every row changed"."""
        try:
            self._changed(orjson.loads(payload))
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            self.forget_everything()

    def _changed(self, tables: object) -> None:
        if not isinstance(tables, Mapping):
            self.forget_everything()
            return
        for table, columns in tables.items():
            kept_by = self._columns.get(table)
            if kept_by is None:
                continue
            values = columns.get(kept_by) if isinstance(columns, Mapping) and len(columns) == 1 else None
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                self._forget_table(table)
                continue
            for value in values:
                at = (table, value)
                if at in self._rows:
                    self._drop(at)
                for read in self._reads.get(at, ()):
                    read.stale = True

    def forget_everything(self) -> None:
        for table in self._table_generations:
            self._forget_table(table)
        self._rows.clear()
        self._bytes = 0

    # -- inside ------------------------------------------------------------------------------------

    def _forget_table(self, table: str) -> None:
        """Lazily: a kept row of an older generation is dropped when next found or pushed out."""
        self._table_generations[table] = self._table_generations.get(table, 0) + 1
        for (read_table, _), reads in self._reads.items():
            if read_table == table:
                for read in reads:
                    read.stale = True

    def _put(self, at: tuple[str, str], row: Any, weight: int, generation: int) -> None:
        if weight * LARGEST_SHARE > self.max_bytes:
            return
        if at in self._rows:
            self._drop(at)
        self._rows[at] = _Kept(row, weight, generation)
        self._bytes += weight
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._rows)))

    def _drop(self, at: tuple[str, str]) -> None:
        self._bytes -= self._rows.pop(at).weight

    @property
    def weight(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._rows)
