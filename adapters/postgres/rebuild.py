"""Blue/green rebuild of projections' tables from the log.

Replays every event into fresh ``<table>__rebuild`` copies while the live
tables keep answering, then, for each projection, in one transaction holding
its swap lock (which waits for the live runner's batch in flight and holds off
the next), brings the copies up to the live checkpoint and renames them into
place.

Why it is fast (``bench.content``, ``bench.read_stores``):

* One reader for every projection rebuilt together: each event is read and
  decoded once and handed to each projection, instead of one cursor per
  projection.
* The fresh tables are written with ``COPY``, not row by row. Changes are
  folded in memory per table and key for a chunk of events (an upsert
  followed by updates becomes one row; a delete cancels what came before),
  then the chunk's net rows go in with one ``COPY`` per table and column set:
  straight into the table while it is still empty, else through a temporary
  staging table merged with one ``INSERT ... SELECT ... ON CONFLICT`` (a key
  written by an earlier chunk is updated in place). Memory is bounded by the
  chunk, and the next chunk is read and folded while the last one is written.
* The fold gives the same rows as applying the changes one by one, as the
  live projectors do (``adapters/postgres/changes.py``); a change it cannot
  fold exactly (an update of a key column, a delete by columns the pending
  rows do not carry) flushes the table's pending rows and is applied alone.

The fresh copies take the live tables' columns, indexes and constraints when
the rebuild starts. A schema migration that changes a live table meanwhile (a
newer version's process starting during a long replay) would be undone by
the swap, so the swap compares the live tables with what was copied, under
its exclusive lock, and a projection whose tables changed is not swapped
(``ReadModelChanged``): its live tables stay as they are, and a second
replay copies them as they are now.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from operator import itemgetter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from adapters.collection import collecting_rarely
from adapters.postgres.changes import _delete_sql, _q, _update_sql, apply_changes
from adapters.postgres.pool import connect
from adapters.postgres.projector import NOTIFY_CHANNEL, ROWS_CHANNEL, rows_notice, swap_lock_key
from adapters.postgres.row_cache import EVERYTHING_CHANGED
from commands.ports import EventStore
from domain.base import EventCodec
from projections.changes import Change, Delete, Projection, Update, Upsert

SUFFIX = "__rebuild"
CHUNK_EVENTS = 20_000
"""Events folded in memory before their net rows are written (bounds the rebuild's memory)."""
KNOWN_KEYS = 500_000
"""Keys remembered per table (about 100-200 bytes each); past this, upserts merge through a staging table."""
STAGED_UPDATES = 64
"""Above this many updates of rows written by earlier chunks, they go through a staging table."""

Progress = Callable[[int, int], None]  # (position reached, target position)


# --------------------------------------------------------------------------- the fold


@dataclass(slots=True)
class _Entry:
    """A key's net change in the chunk: delete it first (``deleted``), then upsert ``row``,
    or update ``fields`` of the row an earlier chunk wrote (never both ``row`` and ``fields``)."""

    deleted: bool = False
    row: dict[str, Any] | None = None
    fields: dict[str, Any] | None = None


def _tuple_getter(columns: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """The values of ``columns`` in a row, as a tuple (``itemgetter`` gives a bare value for one column)."""
    if len(columns) == 1:
        column = columns[0]
        return lambda row: (row[column],)
    return itemgetter(*columns)  # type: ignore[return-value]


class _Table:
    """One fresh table's pending changes since its last flush."""

    def __init__(self, name: str, key: tuple[str, ...]) -> None:
        self.name = name
        self.target = name + SUFFIX
        self.key = key
        self._key_set = frozenset(key)
        self._key_of = _tuple_getter(key)
        self.entries: dict[tuple[Any, ...], _Entry] = {}
        self.deletes_by: list[tuple[tuple[str, ...], tuple[Any, ...]]] = []  # deletes by other columns
        self._reset()
        self.written = False  # rows went into the table
        # The keys written so far, while there are at most KNOWN_KEYS: a key not among them has no
        # row, so its upsert is a plain COPY and its updates and deletes are no-ops. None: unknown.
        self.known: set[tuple[Any, ...]] | None = set()
        self.stage: str | None = None

    def _reset(self) -> None:
        # What deletes by other columns need, kept as rows change: the columns every pending row
        # has (None: no row yet), the columns pending updates of earlier rows set, and per column
        # set a delete matched on, the pending keys by those columns' values (checked on use).
        self._row_columns: set[str] | None = None
        self._updated_columns: set[str] = set()
        self._indexes: dict[tuple[str, ...], dict[tuple[Any, ...], set[tuple[Any, ...]]]] = {}

    def _new_row(self, k: tuple[Any, ...], row: dict[str, Any]) -> None:
        self._row_columns = set(row) if self._row_columns is None else self._row_columns & row.keys()
        self._indexed(k, row)

    def _indexed(self, k: tuple[Any, ...], row: dict[str, Any]) -> None:
        for columns, index in self._indexes.items():
            index.setdefault(tuple(row.get(c) for c in columns), set()).add(k)

    def fold(self, change: Change) -> bool:
        """Fold ``change`` into the pending state; False when it cannot be folded exactly."""
        if isinstance(change, Upsert):
            if tuple(change.key) != self.key and set(change.key) != self._key_set:
                return False
            k = self._key_of(change.row)
            entry = self.entries.get(k)
            if entry is None:
                self.entries[k] = entry = _Entry(row=dict(change.row))
                self._new_row(k, entry.row)  # type: ignore[arg-type]
            elif entry.row is not None:
                entry.row.update(change.row)  # upsert(a) then upsert(b) = upsert(a | b)
                self._indexed(k, entry.row)
            elif entry.fields is not None:
                if not entry.fields.keys() <= change.row.keys():
                    return False  # the update reached only an existing row: not one upsert
                entry.fields, entry.row = None, dict(change.row)
                self._new_row(k, entry.row)
            else:
                entry.row = dict(change.row)  # deleted, then inserted again
                self._new_row(k, entry.row)
            return True
        if isinstance(change, Update):
            if not change.fields:
                return True
            if change.where.keys() != self._key_set or self._key_set & change.fields.keys():
                return False
            k = self._key_of(change.where)
            entry = self.entries.get(k)
            if entry is None:
                self.entries[k] = _Entry(fields=dict(change.fields))
                self._updated_columns.update(change.fields)
            elif entry.row is not None:
                entry.row.update(change.fields)  # upsert(a) then update(f) = upsert(a | f)
                if self._indexes:
                    self._indexed(k, entry.row)
            elif entry.fields is not None:
                entry.fields.update(change.fields)
                self._updated_columns.update(change.fields)
            # else: the row is deleted; updating it changes nothing
            return True
        if isinstance(change, Delete):
            if change.where.keys() == self._key_set:
                self.entries[self._key_of(change.where)] = _Entry(deleted=True)
                return True
            return self._delete_by(change.where)
        raise TypeError(f"unknown change {change!r}")  # pragma: no cover - the Change union is closed

    def _delete_by(self, where: dict[str, Any]) -> bool:
        """A delete by other columns (a blob's memberships, a book's chapters): it runs first in
        the flush, and the pending rows it matches are deleted here. Pending updates of rows an
        earlier chunk wrote may follow it: they must not touch the columns it matches on."""
        columns = tuple(where)
        if not self._updated_columns.isdisjoint(columns):
            return False
        if self._row_columns is not None and not self._row_columns.issuperset(columns):
            return False  # a pending row without one of the columns: cannot say whether it matches
        index = self._indexes.get(columns)
        if index is None:
            self._indexes[columns] = index = {}
            for k, entry in self.entries.items():
                if entry.row is not None:
                    index.setdefault(tuple(entry.row[c] for c in columns), set()).add(k)
        for k in index.pop(tuple(where[c] for c in columns), ()):
            entry = self.entries[k]
            if entry.row is not None and all(entry.row[c] == where[c] for c in columns):
                entry.deleted, entry.row = True, None
        self.deletes_by.append((columns, tuple(where.values())))
        return True

    def take(self) -> _Pending:
        pending = _Pending(self, self.entries, self.deletes_by)
        self.entries, self.deletes_by = {}, []
        self._reset()
        return pending


@dataclass(slots=True)
class _Pending:
    table: _Table
    entries: dict[tuple[Any, ...], _Entry]
    deletes_by: list[tuple[tuple[str, ...], tuple[Any, ...]]]

    def __bool__(self) -> bool:
        return bool(self.entries or self.deletes_by)


# --------------------------------------------------------------------------- writing a chunk


def _groups(items: Iterable[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    out: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for item in items:
        out.setdefault(tuple(item), []).append(item)
    return out


async def _staging(conn: asyncpg.Connection, table: _Table) -> str:
    """A temporary table with the fresh table's columns and no constraints (dropped with the session)."""
    if table.stage is None:
        table.stage = f"stage_{table.name}"
        await conn.execute(
            f"CREATE TEMPORARY TABLE {_q(table.stage)} AS SELECT * FROM {_q(table.target)} WITH NO DATA"
        )
    return table.stage


async def _write(conn: asyncpg.Connection, pending: _Pending) -> None:
    """One table's chunk: deletes by other columns, then deletes by key, upserts, updates.
    Rows whose key the table cannot hold yet go in with a plain COPY; the others (or all,
    once the table's keys are no longer tracked) through a staging table merged with
    ``INSERT ... ON CONFLICT``."""
    table, entries = pending.table, pending.entries
    known = table.known

    def may_exist(k: tuple[Any, ...]) -> bool:
        return table.written and (known is None or k in known)

    for columns, rows in _groups_by_columns(pending.deletes_by).items():
        await conn.executemany(_delete_sql(table.target, columns), rows)
    deleted = [k for k, e in entries.items() if e.deleted and may_exist(k)]
    if deleted:
        await conn.executemany(_delete_sql(table.target, table.key), deleted)
    fresh: list[dict[str, Any]] = []
    merged: list[dict[str, Any]] = []
    for k, e in entries.items():
        if e.row is not None:
            (merged if may_exist(k) else fresh).append(e.row)
    for columns, rows in _groups(fresh).items():
        await conn.copy_records_to_table(table.target, records=[tuple(r.values()) for r in rows], columns=columns)
    for columns, rows in _groups(merged).items():
        stage = await _staging(conn, table)
        await conn.execute(f"TRUNCATE {_q(stage)}")
        await conn.copy_records_to_table(stage, records=[tuple(r.values()) for r in rows], columns=columns)
        cols = ", ".join(_q(c) for c in columns)
        sets = ", ".join(f"{_q(c)} = EXCLUDED.{_q(c)}" for c in columns if c not in table.key)
        conflict = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
        await conn.execute(
            f"INSERT INTO {_q(table.target)} ({cols}) SELECT {cols} FROM {_q(stage)}"
            f" ON CONFLICT ({', '.join(_q(k) for k in table.key)}) {conflict}"
        )
    updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for k, e in entries.items():
        if e.fields is not None and e.row is None and not e.deleted and may_exist(k):
            updates.setdefault(tuple(e.fields), []).append((*e.fields.values(), *k))
    for fields, rows in updates.items():
        await _update(conn, table, fields, rows)
    if fresh or merged:
        table.written = True
        if known is not None:
            known.update(k for k, e in entries.items() if e.row is not None)
            if len(known) > KNOWN_KEYS:
                table.known = None


def _groups_by_columns(
    deletes: Sequence[tuple[tuple[str, ...], tuple[Any, ...]]],
) -> dict[tuple[str, ...], list[tuple[Any, ...]]]:
    out: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for columns, values in deletes:
        out.setdefault(columns, []).append(values)
    return out


async def _update(conn: asyncpg.Connection, table: _Table, fields: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Updates of rows earlier chunks wrote: ``executemany`` when few, else COPY and one ``UPDATE ... FROM``."""
    if len(rows) <= STAGED_UPDATES:
        await conn.executemany(_update_sql(table.target, fields, table.key), rows)
        return
    stage = await _staging(conn, table)
    await conn.execute(f"TRUNCATE {_q(stage)}")
    await conn.copy_records_to_table(stage, records=rows, columns=(*fields, *table.key))
    sets = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in fields)
    match = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in table.key)
    await conn.execute(f"UPDATE {_q(table.target)} AS t SET {sets} FROM {_q(stage)} AS s WHERE {match}")


# --------------------------------------------------------------------------- the replay


def _jsonb_binary(value: Any) -> bytes:
    return b"\x01" + orjson.dumps(value)  # jsonb's binary format: a version byte, then the text


async def _binary_json(conn: asyncpg.Connection) -> None:
    """COPY speaks PostgreSQL's binary format: the rebuild's connection encodes jsonb in it
    (the same orjson text as the pool's codec, behind jsonb's version byte)."""
    await conn.set_type_codec("jsonb", encoder=_jsonb_binary, decoder=lambda b: orjson.loads(b[1:]),
                              schema="pg_catalog", format="binary")
    await conn.set_type_codec("json", encoder=orjson.dumps, decoder=orjson.loads, schema="pg_catalog",
                              format="binary")


async def _primary_keys(conn: asyncpg.Connection, tables: Iterable[str]) -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {}
    for table in tables:
        rows = await conn.fetch(
            "SELECT a.attname FROM pg_index i"
            " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY k.n",
            _q(table),
        )
        keys[table] = tuple(r["attname"] for r in rows)
    return keys


class _Folder:
    """Every rebuilt table's fold, and the chunk being written while the next one is folded."""

    def __init__(self, conn: asyncpg.Connection, keys: dict[str, tuple[str, ...]]) -> None:
        self._conn = conn
        self.tables = {name: _Table(name, key) for name, key in keys.items()}
        self._writing: asyncio.Task[None] | None = None

    async def apply_alone(self, change: Change) -> None:
        """A change the fold cannot take: write what is pending, then apply it as the live projector would."""
        await self.flush(wait=True)
        await apply_changes(self._conn, [change], SUFFIX)
        table = self.tables[change.table]
        table.written, table.known = True, None  # which keys it wrote is not followed here

    async def flush(self, *, wait: bool = False) -> None:
        """Start writing what is pending (after the chunk before it); ``wait``: until written."""
        if self._writing is not None:
            await self._writing
            self._writing = None
        chunk = [p for p in (t.take() for t in self.tables.values()) if p]
        if chunk:
            self._writing = asyncio.ensure_future(self._write(chunk))
        if wait and self._writing is not None:
            await self._writing
            self._writing = None

    async def _write(self, chunk: list[_Pending]) -> None:
        async with self._conn.transaction():
            for pending in chunk:
                await _write(self._conn, pending)

    async def close(self) -> None:
        if self._writing is not None:
            self._writing.cancel()
            await asyncio.gather(self._writing, return_exceptions=True)


_INDEXES = """
SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS index_def, pg_get_constraintdef(c.oid) AS constraint_def
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u', 'x')
WHERE x.indrelid = quote_ident($1)::regclass
ORDER BY x.indisprimary DESC, i.relname
"""

_ON_TABLE = re.compile(r' ON (?:ONLY )?(?:"[^"]*"|[^ "]+)(?:\.(?:"[^"]*"|[^ "]+))? USING ')

Renames = dict[str, list[tuple[str, str, bool]]]
"""Per table: (the fresh copy's index or constraint name, the live one's, whether a constraint)."""

_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS def
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = quote_ident($1)::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

Shape = tuple[tuple[tuple[Any, ...], ...], tuple[tuple[Any, ...], ...]]
"""A live table's columns and its indexes and constraints, as the fresh copy took them."""


class ReadModelChanged(Exception):
    """Live tables changed (a schema migration ran) while their fresh copies were filled; those
    projections were not swapped in, so that the change is kept. Replaying again copies it."""

    def __init__(self, projections: Sequence[str]) -> None:
        super().__init__(
            f"the read model's tables of {', '.join(projections)} changed while they were rebuilt (a schema "
            "migration ran); those projections were left as they were: run the replay again")
        self.projections = tuple(projections)


async def _shape(conn: asyncpg.Connection, table: str) -> Shape:
    columns = tuple(tuple(r.values()) for r in await conn.fetch(_COLUMNS, table))
    return columns, tuple(tuple(r.values()) for r in await conn.fetch(_INDEXES, table))


def _temporary_name(table: str, i: int) -> str:
    """The ``i``-th index or constraint of ``table``'s fresh copy: unique per table (a hash of the
    whole name, since two long names may share their start) and within PostgreSQL's 63 bytes."""
    return f"{table[:32]}_{hashlib.blake2s(table.encode(), digest_size=4).hexdigest()}{SUFFIX}_{i}"


async def _prepare(conn: asyncpg.Connection, tables: Iterable[str]) -> tuple[Renames, dict[str, Shape]]:
    """Empty fresh copies of ``tables`` with the live tables' columns, defaults, checks, indexes
    and constraints, and the live tables' shapes they were copied from. The indexes and
    constraints get names of their own (``LIKE ... INCLUDING INDEXES`` would name them after the
    fresh table, and after the swap the live table would keep those names: a later schema
    migration naming an index would not find it); the swap gives them the live names back."""
    renames: Renames = {}
    shapes: dict[str, Shape] = {}
    for table in tables:
        fresh = table + SUFFIX
        shapes[table] = shape = await _shape(conn, table)  # before the copy: a change in between is seen as one
        await conn.execute(f"DROP TABLE IF EXISTS {_q(fresh)}")
        await conn.execute(f"CREATE TABLE {_q(fresh)} (LIKE {_q(table)} INCLUDING ALL EXCLUDING INDEXES)")
        renames[table] = []
        for i, (name, index_def, constraint_def) in enumerate(shape[1]):  # the rows of _INDEXES
            temporary = _temporary_name(table, i)
            if constraint_def is not None:
                await conn.execute(f"ALTER TABLE {_q(fresh)} ADD CONSTRAINT {_q(temporary)} {constraint_def}")
            else:
                definition: str = index_def  # CREATE [UNIQUE] INDEX name ON [ONLY] table USING ...
                unique = "UNIQUE " if definition.startswith("CREATE UNIQUE") else ""
                on = _ON_TABLE.search(definition)  # after the name, which may itself hold " USING "
                assert on is not None, definition
                using = definition[on.end() - len("USING "):]
                await conn.execute(f"CREATE {unique}INDEX {_q(temporary)} ON {_q(fresh)} {using}")
            renames[table].append((temporary, name, constraint_def is not None))
    return renames, shapes


async def _replay_into_fresh(
    conn: asyncpg.Connection,
    projections: Sequence[Projection],
    store: EventStore,
    codec: EventCodec,
    end: int,
    progress: Progress | None,
    chunk_events: int,
) -> None:
    """Positions 1..``end`` into the empty fresh tables: one reader, each event decoded once, folded, COPYed."""
    if end < 1:
        return
    folder = _Folder(conn, await _primary_keys(conn, [t for p in projections for t in p.tables]))
    tables = folder.tables
    span = store.read_span(1, end)
    folded = 0
    try:
        async for batch in span:
            for record in batch:
                record = codec.upcast(record)
                for projection in projections:
                    for change in projection.changes(record):
                        if not tables[change.table].fold(change):
                            await folder.apply_alone(change)
                folded += 1
                if folded >= chunk_events:
                    await folder.flush()
                    folded = 0
            if progress:
                progress(batch[-1].position, end)
        await folder.flush(wait=True)
    finally:
        await folder.close()
        await span.aclose()  # type: ignore[attr-defined]
    if progress:
        progress(end, end)


async def _replay(
    conn: asyncpg.Connection,
    projection: Projection,
    store: EventStore,
    codec: EventCodec,
    start: int,
    end: int,
    progress: Progress | None,
) -> None:
    """Positions ``start``..``end`` applied change by change, as the live projector does:
    the few events the live tables took in while the fresh ones were filled."""
    async with contextlib.aclosing(store.read_span(start, end)) as span:
        async for batch in span:
            await apply_changes(conn, [c for r in batch for c in projection.changes(codec.upcast(r))], SUFFIX)
            if progress:
                progress(batch[-1].position, end)


SWAP_LOCK_TIMEOUT = "100ms"
"""How long a swap waits for a projection's tables before it lets the queries go first: well
under PostgreSQL's ``deadlock_timeout`` (1 s), so the swap always gives way, not a query."""


async def _lock_live_tables(conn: asyncpg.Connection, tables: Sequence[str]) -> None:
    """Every live table of the projection, exclusively, before any is renamed.

    A query that reads two of them (blobs with their memberships) locks them one after
    the other, and so would a swap renaming them: each could hold one and wait for the
    other, and PostgreSQL would end the deadlock by failing one of them, the query as
    likely as not (a 500 to a user, in a replay test). So the swap takes them all at
    once with a short ``lock_timeout``, and when that passes it lets go of everything
    it took (a savepoint) and tries again a moment later: it waits, the queries do not fail.
    """
    names = ", ".join(f'"{table}"' for table in tables)
    delay = 0.01
    while True:
        try:
            async with conn.transaction():  # a savepoint: a timeout gives back what this try took
                await conn.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
                await conn.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
            return
        except asyncpg.LockNotAvailableError:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


async def _swap(
    conn: asyncpg.Connection, projection: Projection, store: EventStore, codec: EventCodec, target: int,
    progress: Progress | None, renames: Renames, shapes: dict[str, Shape],
) -> int | None:
    """Under the projection's swap lock: catch up with the live checkpoint, rename, move the
    checkpoint. None, and nothing swapped, when a live table is no longer what was copied."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", swap_lock_key(projection.name))
        live = int(await conn.fetchval(
            "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", projection.name
        ))
        if live > target:
            await _replay(conn, projection, store, codec, target + 1, live, progress)
        reached = max(live, target)
        await _lock_live_tables(conn, projection.tables)
        for table in projection.tables:
            if await _shape(conn, table) != shapes[table]:
                return None  # nothing live was touched: only the fresh copies, which the caller drops
        for table in projection.tables:
            await conn.execute(f'ALTER TABLE "{table}" RENAME TO "{table}__old"')
            await conn.execute(f'ALTER TABLE "{table}{SUFFIX}" RENAME TO "{table}"')
            await conn.execute(f'DROP TABLE "{table}__old"')
            for temporary, name, constraint in renames.get(table, []):
                if constraint:
                    await conn.execute(f"ALTER TABLE {_q(table)} RENAME CONSTRAINT {_q(temporary)} TO {_q(name)}")
                else:
                    await conn.execute(f"ALTER INDEX {_q(temporary)} RENAME TO {_q(name)}")
        await conn.execute(
            "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
            projection.name,
            reached,
        )
        # every row of its tables may differ now (a rebuild is how a projection's fix reaches them):
        # row caches forget everything (adapters/postgres/row_cache.py)
        await conn.execute("SELECT pg_notify($1, $2), pg_notify($3, $4)",
                           ROWS_CHANNEL, rows_notice(projection.name, reached, EVERYTHING_CHANGED),
                           NOTIFY_CHANNEL, f"{projection.name}:{reached}")
    return reached


async def rebuild_all(
    projections: Sequence[Projection],
    *,
    dsn: str,
    store: EventStore,
    codec: EventCodec,
    progress: Progress | None = None,
    chunk_events: int = CHUNK_EVENTS,
) -> dict[str, int]:
    """Rebuild the projections together from one read of the log and swap each in;
    answers the position each projection's swapped tables reflect. Raises ``ReadModelChanged``
    after swapping the others when some projection's live tables changed meanwhile."""
    conn = await connect(dsn)
    try:
        await _binary_json(conn)
        for projection in projections:
            await conn.execute(
                "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                projection.name,
            )
        renames, shapes = await _prepare(conn, [t for p in projections for t in p.tables])
        target = await store.last_position()
        with collecting_rarely():
            await _replay_into_fresh(conn, projections, store, codec, target, progress, chunk_events)
        reached: dict[str, int] = {}
        changed: list[str] = []
        for projection in projections:
            swapped = await _swap(conn, projection, store, codec, target, progress, renames, shapes)
            if swapped is None:
                changed.append(projection.name)
                for table in projection.tables:
                    await conn.execute(f"DROP TABLE IF EXISTS {_q(table + SUFFIX)}")
            else:
                reached[projection.name] = swapped
        if changed:
            raise ReadModelChanged(changed)
        return reached
    finally:
        await conn.close()


async def rebuild(
    projection: Projection,
    *,
    dsn: str,
    store: EventStore,
    codec: EventCodec,
    progress: Progress | None = None,
    chunk_events: int = CHUNK_EVENTS,
) -> int:
    """Rebuild one projection and swap it in; returns the position the swapped tables reflect."""
    reached = await rebuild_all([projection], dsn=dsn, store=store, codec=codec, progress=progress,
                                chunk_events=chunk_events)
    return reached[projection.name]
