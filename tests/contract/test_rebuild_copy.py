"""A rebuild writes fresh tables with COPY, folding changes per key a chunk at a time: the
tables it swaps in must equal, row by row, what the live projectors' change-by-change
writes made of the same log, whatever the chunk size (a chunk of one event, chunks that
split an aggregate's history, one chunk for the whole log) and for every projection.

The log is a random but valid studio history on real PostgreSQL: buckets renamed and
deleted; blobs updated, migrated, moved back and forth (a membership deleted and
added again), deleted; books with chapters added, edited, removed, reordered, books
deleted (a delete of every chapter by book); processors updated and deleted; jobs
through every status; users; schema versions. Aggregates are interleaved, so an
aggregate's later events land in later chunks than its first.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from adapters.postgres.changes import apply_changes
from adapters.postgres.pool import connect
from adapters.postgres import rebuild as rebuild_module
from adapters.postgres.rebuild import rebuild, rebuild_all
from adapters.runtime.bootstrap import projections
from domain.base import EventCodec
from domain.ids import new_id
from domain.recorded import NewEvent, Recorded
from projections.changes import Change, Delete, Projection, Update, Upsert
from tests.support.memory_store import MemoryEventStore

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Studio:
    """Appends a random, valid history to a memory log, aggregates interleaved."""

    def __init__(self, store: MemoryEventStore, seed: int) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.versions: dict[str, int] = {}
        self.tick = 0
        self.owner = new_id()
        self.buckets: list[str] = []
        self.blobs: dict[str, list[str]] = {}  # blob -> its buckets
        self.books: dict[str, list[str]] = {}  # book -> its chapter ids
        self.processors: list[str] = []
        self.jobs: dict[str, str] = {}  # job -> status

    async def emit(self, kind: str, aggregate_id: str, type_: str, data: dict[str, Any],
                   class_version: int = 1) -> None:
        self.tick += 1
        version = self.versions.get(aggregate_id, 0) + 1
        self.versions[aggregate_id] = version
        event = NewEvent(type=type_, version=version, at=T0 + timedelta(seconds=self.tick), data=data,
                         class_version=class_version, actor=self.owner)
        expected = self.store._by_subject.get((kind, aggregate_id), [])
        await self.store.append(kind, aggregate_id, event, expected[-1].position if expected else 0, new_id())

    async def step(self) -> None:
        r, rng = self.rng.random(), self.rng
        if r < 0.03 or not self.buckets:
            bucket = new_id()
            self.buckets.append(bucket)
            await self.emit("bucket", bucket, "Bucket.Created", {
                "owner_id": self.owner, "name": f"b{self.tick}", "type": "shelf",
                "parent_id": rng.choice([None, *self.buckets[:-1]])})
        elif r < 0.05:
            await self.emit("bucket", rng.choice(self.buckets), "Bucket.Updated",
                            {"name": f"renamed {self.tick}", "parent_id": None})
        elif r < 0.06 and len(self.buckets) > 3:
            bucket = self.buckets.pop(rng.randrange(len(self.buckets) - 1))
            await self.emit("bucket", bucket, "Bucket.Deleted", {})
        elif r < 0.20:
            blob, into = new_id(), rng.sample(self.buckets, min(len(self.buckets), rng.choice([0, 1, 2])))
            self.blobs[blob] = into
            await self.emit("blob", blob, "Blob.Created", {
                "owner_id": self.owner, "schema_id": rng.choice([None, "s@1.0.0"]), "processor_id": None,
                "data": rng.choice([{"n": self.tick}, [1, "two"], "text", None, 3]), "bucket_ids": into})
        elif r < 0.30 and self.blobs:
            await self.emit("blob", rng.choice(list(self.blobs)), "Blob.Updated", {"data": {"edit": self.tick}})
        elif r < 0.33 and self.blobs:
            await self.emit("blob", rng.choice(list(self.blobs)), "Blob.Migrated",
                            {"schema_id": "s@2.0.0", "data": {"migrated": self.tick}})
        elif r < 0.42 and self.blobs:
            blob = rng.choice(list(self.blobs))
            now = self.blobs[blob]
            if now:
                left = rng.choice(now)
                to = rng.choice(self.buckets)
                after = [b for b in now if b != left] + ([to] if to not in now or to == left else [])
                self.blobs[blob] = after
                await self.emit("blob", blob, "Blob.Moved",
                                {"bucket_ids": after, "from_bucket_id": left, "to_bucket_id": to})
        elif r < 0.45 and self.blobs:
            blob = rng.choice(list(self.blobs))
            del self.blobs[blob]
            await self.emit("blob", blob, "Blob.Deleted", {})
        elif r < 0.52:
            book = new_id()
            chapters = [{"id": new_id(), "title": f"c{n}", "content": "words " * n} for n in range(rng.randrange(4))]
            self.books[book] = [c["id"] for c in chapters]
            await self.emit("book", book, "Book.Created", {
                "owner_id": self.owner, "title": f"book {self.tick}",
                "metadata": rng.choice([None, {"genre": "x"}]), "chapters": chapters})
        elif r < 0.55 and self.books:
            await self.emit("book", rng.choice(list(self.books)), "Book.Updated",
                            {"title": rng.choice([None, f"t{self.tick}"]), "metadata": rng.choice([None, {"m": 1}])})
        elif r < 0.62 and self.books:
            book = rng.choice(list(self.books))
            chapter = {"id": new_id(), "title": f"added {self.tick}", "content": "more"}
            self.books[book].append(chapter["id"])
            await self.emit("book", book, "Book.ChapterAdded", {"chapter": chapter, "chapter_ids": self.books[book]})
        elif r < 0.70 and any(self.books.values()):
            book = rng.choice([b for b, c in self.books.items() if c])
            await self.emit("book", book, "Book.ChapterEdited", {
                "chapter_id": rng.choice(self.books[book]), "title": rng.choice([None, f"e{self.tick}"]),
                "content": rng.choice([None, f"edited {self.tick}"])})
        elif r < 0.73 and any(self.books.values()):
            book = rng.choice([b for b, c in self.books.items() if c])
            gone = self.books[book].pop(rng.randrange(len(self.books[book])))
            await self.emit("book", book, "Book.ChapterRemoved", {"chapter_id": gone, "chapter_ids": self.books[book]})
        elif r < 0.75 and self.books:
            book = rng.choice(list(self.books))
            rng.shuffle(self.books[book])
            await self.emit("book", book, "Book.ChaptersReordered", {"chapter_ids": self.books[book]})
        elif r < 0.78 and self.books:
            book = rng.choice(list(self.books))
            del self.books[book]
            await self.emit("book", book, "Book.Deleted", {})
        elif r < 0.80:
            processor = new_id()
            self.processors.append(processor)
            await self.emit("processor", processor, "Processor.Registered", {
                "owner_id": self.owner, "name": f"p{self.tick}", "type": "javascript", "input_schema": None,
                "output_schema": "s@1.0.0", "config": {"code": "x"}, "triggers": [], "limits": {"timeout": 1}})
        elif r < 0.82 and self.processors:
            await self.emit("processor", rng.choice(self.processors), "Processor.Updated",
                            {"config": {"code": str(self.tick)}, "triggers": [{"on": "blob"}], "limits": {}})
        elif r < 0.83 and self.processors:
            await self.emit("processor", self.processors.pop(), "Processor.Deleted", {})
        elif r < 0.88 and self.blobs:
            job = new_id()
            self.jobs[job] = "pending"
            requested = {
                "owner_id": self.owner, "processor_id": new_id(), "processor_version": 1,
                "processor_type": "javascript", "input_blob_id": rng.choice(list(self.blobs)), "input_version": 1,
                "trigger": rng.choice([None, {"kind": "manual"}]), "depth": 0}
            if rng.random() < 0.5:  # class version 2 carries the chain's budget; 1 is a job from before it
                await self.emit("job", job, "Job.Requested", {**requested, "budget": rng.choice([-1, 0, 15])}, 2)
            else:
                await self.emit("job", job, "Job.Requested", requested)
        elif r < 0.95 and self.jobs:
            job = rng.choice(list(self.jobs))
            type_, data = rng.choice([
                ("Job.Started", {"attempt": 1}), ("Job.AttemptFailed", {"error": {"code": "x"}}),
                ("Job.Completed", {"output_blob_id": new_id()}), ("Job.Failed", {"error": {"code": "y"}}),
                ("Job.Cancelled", {}), ("Job.Retried", {}),
            ])
            await self.emit("job", job, type_, data)
        elif r < 0.97:
            account = new_id()
            await self.emit("user", account, "User.Registered",
                            {"user_id": new_id(), "email": f"{account}@x.example", "username": "u"})
        else:
            name = f"s{self.tick}"
            await self.emit("schema", name, "Schema.Created", {
                "name": name, "version": "1.0.0", "owner_id": self.owner, "schema": {"type": "object"},
                "migration": None})
            await self.emit("schema", name, "Schema.VersionAdded", {
                "name": name, "version": "1.1.0-rc.1", "owner_id": self.owner, "schema": {"type": "object"},
                "migration": {"from_version": "1.0.0", "transform": "x"}})


async def studio_log(seed: int, steps: int) -> MemoryEventStore:
    """A memory log holding ``steps`` steps of a random studio history."""
    store = MemoryEventStore()
    studio = Studio(store, seed)
    for _ in range(steps):
        await studio.step()
    return store


def projection_named(name: str) -> Projection:
    return next(p for p in projections() if p.name == name)


async def dump(conn: asyncpg.Connection) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for projection in projections():
        for table in projection.tables:
            rows = await conn.fetch(f'SELECT * FROM "{table}" ORDER BY 1, 2')
            out[table] = [tuple(r.items()) for r in rows]
    return out


async def indexes(conn: asyncpg.Connection) -> dict[str, list[tuple[str, str]]]:
    """Every read-model table's indexes and constraints, by name, with their definitions."""
    out = {}
    for projection in projections():
        for table in projection.tables:
            rows = await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY 1", table)
            constraints = await conn.fetch(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass"
                " ORDER BY 1", table)  # fmt: skip
            out[table] = [tuple(r.values()) for r in rows] + [tuple(r.values()) for r in constraints]
    return out


@pytest.mark.parametrize("seed", [1, 2])
async def test_a_rebuild_by_copy_equals_the_live_projectors_writes_at_every_chunk_size(
    blank: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if seed == 2:  # updates of rows earlier chunks wrote go through the staging table, not executemany;
        monkeypatch.setattr(rebuild_module, "STAGED_UPDATES", 1)  # and upserts, once keys are not tracked
        monkeypatch.setattr(rebuild_module, "KNOWN_KEYS", 50)
    store, codec = await studio_log(seed, 1500), EventCodec([])
    chosen = projections()
    conn = await connect(blank)
    try:
        for record in store.records:  # as the live projectors write: change by change, event by event
            await apply_changes(conn, [c for p in chosen for c in p.changes(record)])
        live, named = await dump(conn), await indexes(conn)
        assert all(live[t] for t in ("blobs", "blob_buckets", "books", "book_chapters", "jobs", "processors"))
        assert named["blobs"] and any(name == "blobs_owner_created" for name, _ in named["blobs"])

        for chunk in (1, 7, 64, 500, 100_000):
            reached = await rebuild_all(chosen, dsn=blank, store=store, codec=codec, chunk_events=chunk)
            assert reached == {p.name: len(store.records) for p in chosen}
            assert await dump(conn) == live, f"chunk of {chunk} events"
            assert await indexes(conn) == named, "the swapped tables keep the live names of indexes and constraints"
    finally:
        await conn.close()


async def test_one_projection_rebuilt_alone_and_progress_reaches_the_end(blank: str) -> None:
    store = await studio_log(3, 400)
    books = projection_named("books")
    conn = await connect(blank)
    try:
        for record in store.records:
            await apply_changes(conn, books.changes(record))
        live = await dump(conn)
        seen: list[tuple[int, int]] = []
        reached = await rebuild(books, dsn=blank, store=store, codec=EventCodec([]), chunk_events=50,
                                progress=lambda at, target: seen.append((at, target)))
        assert reached == len(store.records)
        assert await dump(conn) == live
        assert seen and seen[-1] == (len(store.records), len(store.records))
        assert [at for at, _ in seen] == sorted(at for at, _ in seen)
    finally:
        await conn.close()


class Things:
    """Changes the fold cannot merge into one row per key: an update before the row's upsert
    (which only reached a row an earlier chunk wrote), an update of a key column, a delete
    by a column a pending update changes. The rebuild writes what is pending and applies
    each alone, as the live projector does."""

    name = "things"
    tables = ("things",)

    def changes(self, record: Recorded) -> list[Change]:
        d = record.data
        if record.type == "Thing.Put":
            return [Upsert("things", ("id",), {"id": d["id"], "grp": d["grp"], "a": record.position})]
        if record.type == "Thing.Touched":
            return [Update("things", {"id": d["id"]}, {"b": record.position})]
        if record.type == "Thing.Regrouped":
            return [Update("things", {"id": d["id"]}, {"grp": d["grp"]})]
        if record.type == "Thing.Renamed":
            return [Update("things", {"id": d["id"]}, {"id": d["to"]})]
        if record.type == "Thing.GroupDropped":
            return [Delete("things", {"grp": d["grp"]})]
        return []


async def test_changes_the_fold_cannot_merge_are_applied_alone_in_order(blank: str) -> None:
    store, rng = MemoryEventStore(), random.Random(4)
    ids = [f"t{i}" for i in range(12)]
    for n in range(600):
        kind = rng.choice(["Put", "Put", "Touched", "Touched", "Regrouped", "Renamed", "GroupDropped"])
        data: dict[str, Any] = {"id": rng.choice(ids), "grp": rng.choice("xyz"), "to": f"r{n}"}
        if kind == "Renamed":
            ids[ids.index(data["id"])] = data["to"]
        await store.append("thing", f"e{n}", NewEvent(type=f"Thing.{kind}", version=1,
                           at=T0 + timedelta(seconds=n), data=data), 0, new_id())
    things = Things()
    conn = await connect(blank)
    try:
        await conn.execute("CREATE TABLE things (id text PRIMARY KEY, grp text NOT NULL, a bigint NOT NULL, b bigint)")
        for record in store.records:
            await apply_changes(conn, things.changes(record))
        live = [tuple(r) for r in await conn.fetch("SELECT * FROM things ORDER BY id")]
        assert live
        for chunk in (1, 5, 50, 1000):
            await rebuild(things, dsn=blank, store=store, codec=EventCodec([]), chunk_events=chunk)
            assert [tuple(r) for r in await conn.fetch("SELECT * FROM things ORDER BY id")] == live, chunk
    finally:
        await conn.close()
