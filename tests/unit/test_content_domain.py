"""Content context, write side: schema, bucket and blob aggregates and their
command handlers, on the in-memory event store (no servers)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.sandbox import JavaScriptSandbox, SandboxError
from adapters.validation.pool import ValidatorPool
from commands.blobs import BlobCommands
from commands.buckets import KEEP, BucketCommands
from commands.repository import Context, Repository
from commands.schemas import SchemaCommands
from domain.base import EventCodec
from domain.blob import Blob
from domain.bucket import Bucket
from domain.errors import (
    ConcurrencyError,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from domain.ids import hashed_id, new_id
from domain.schema import Schema, SemVer, parse_schema_id, schema_aggregate_id
from projections.blobs import BlobProjection
from projections.buckets import BucketProjection
from tests.support.memory_store import MemoryEventStore
from tests.support.memory_tables import MemoryTables
from domain.recorded import NewEvent

ALICE = new_id()
BOB = new_id()

BOOK_V1 = {
    "type": "object",
    "required": ["title", "chapters"],
    "properties": {
        "title": {"type": "string"},
        "chapters": {
            "type": "array",
            "items": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}},
        },
    },
}
BOOK_V2 = {
    "type": "object",
    "required": ["name", "chapters"],
    "properties": {"name": {"type": "string"}, "chapters": {"type": "array"}},
    "additionalProperties": False,
}
BOOK_V3 = {
    "type": "object",
    "required": ["name", "chapters", "count"],
    "properties": {"name": {"type": "string"}, "chapters": {"type": "array"}, "count": {"type": "integer"}},
}
V1_TO_V2 = "function migrate(d) { return {name: d.title, chapters: d.chapters}; }"
V2_TO_V3 = "function migrate(d) { d.count = d.chapters.length; return d; }"
_commands = itertools.count()


def ctx(actor: str | None = ALICE, command_id: str | None = None) -> Context:
    return Context(actor=actor, command_id=command_id or f"cmd-{next(_commands)}-{uuid.uuid4().hex[:6]}")


class ReadModelContents:
    """``BucketContents`` answered by applying the projections to memory tables."""

    def __init__(self, store: MemoryEventStore) -> None:
        self._store = store

    async def is_empty(self, bucket_id: str) -> bool:
        tables = MemoryTables()
        for record in self._store.records:
            tables.apply(BucketProjection().changes(record))
            tables.apply(BlobProjection().changes(record))
        return not any(r["parent_id"] == bucket_id for r in tables.rows("buckets")) and not any(
            r["bucket_id"] == bucket_id for r in tables.rows("blob_buckets")
        )


class World:
    def __init__(self, validators: ValidatorPool) -> None:
        self.store = MemoryEventStore()
        self.repo = Repository(self.store, EventCodec([Schema, Bucket, Blob]))
        self.schemas = SchemaCommands(self.repo, validators, JavaScriptSandbox(timeout_ms=500))
        self.buckets = BucketCommands(self.repo, ReadModelContents(self.store))
        self.blobs = BlobCommands(self.repo, self.schemas, JavaScriptSandbox(timeout_ms=500))

    async def book_schemas(self) -> None:
        await self.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
        await self.schemas.register(ctx(), "book", "2.0.0", BOOK_V2, {"from_version": "1.0.0", "transform": V1_TO_V2})
        await self.schemas.register(ctx(), "book", "3.0.0", BOOK_V3, {"from_version": "2.0.0", "transform": V2_TO_V3})


@pytest.fixture(scope="module")
def validators() -> Iterator[ValidatorPool]:
    """The validation workers the server would use, shared by the module's tests (each starts in ~50 ms)."""
    pool = ValidatorPool()
    yield pool
    pool.close()


@pytest.fixture
def world(validators: ValidatorPool) -> World:
    return World(validators)


async def refused(world: World, exc: type[Exception], call: Any) -> Any:
    """``call`` raises ``exc`` and appends nothing."""
    before = world.store.appends
    with pytest.raises(exc) as info:
        await call
    assert world.store.appends == before
    return info.value


# --- semantic versions, names, ids ---------------------------------------------------------------


def test_semver_precedence_follows_semver_org() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"]  # fmt: skip
    parsed = [SemVer.parse(v) for v in ordered]
    assert sorted(reversed(parsed)) == parsed
    assert [p.pre_sort_key() for p in parsed] == sorted(p.pre_sort_key() for p in parsed[:8]) + [
        "~", "~", "~", "~"
    ]
    assert SemVer.parse("1.0.0+build.5").same_precedence(SemVer.parse("1.0.0"))
    assert str(SemVer.parse("1.2.3-rc.1+b.7")) == "1.2.3-rc.1+b.7"


@pytest.mark.parametrize("text", ["1", "1.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", "v1.0.0", "1.0.0 ", "a.b.c"])
def test_semver_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        SemVer.parse(text)


_ident = st.one_of(st.integers(0, 10**6).map(str), st.from_regex(r"[0-9]*[a-zA-Z-][0-9a-zA-Z-]*", fullmatch=True))
_semvers = st.builds(
    lambda ma, mi, pa, pre: SemVer.parse(f"{ma}.{mi}.{pa}" + ("-" + ".".join(pre) if pre else "")),
    st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.lists(_ident, max_size=3),
)  # fmt: skip


@given(_semvers, _semvers)
def test_sql_sort_key_orders_like_semver(a: SemVer, b: SemVer) -> None:
    """(major, minor, patch, pre_sort_key) in byte order is semver precedence."""
    key_a = (a.major, a.minor, a.patch, a.pre_sort_key().encode())
    key_b = (b.major, b.minor, b.patch, b.pre_sort_key().encode())
    assert (key_a < key_b) == (a < b)
    assert (key_a == key_b) == a.same_precedence(b)


def test_schema_ids() -> None:
    assert parse_schema_id("book@1.2.0") == ("book", "1.2.0")
    assert parse_schema_id("book") == ("book", None)
    for bad in ["Book", "book@", "book@1", "-book", "bo.ok", "", "a" * 65, "x@1.0.0@2.0.0"]:
        with pytest.raises(ValueError):
            parse_schema_id(bad)
    assert schema_aggregate_id("book") == str(hashed_id("schema", "book"))


# --- schema registry ---------------------------------------------------------------------------


async def test_first_registrant_owns_the_name(world: World) -> None:
    saved = await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    assert saved.aggregate.id_str == schema_aggregate_id("book")
    assert saved.aggregate.owner_id == ALICE
    assert saved.aggregate.versions["1.0.0"].created_at == saved.aggregate.modified_on
    await refused(world, Forbidden, world.schemas.register(ctx(BOB), "book", "2.0.0", BOOK_V1))
    again = await world.schemas.register(ctx(), "book", "1.1.0", BOOK_V1)
    assert again.aggregate.version == 2 and again.position == 2
    assert again.aggregate.versions["1.1.0"].created_at == world.store.records[-1].at


async def test_concurrent_first_registrations_have_one_winner(world: World) -> None:
    results = await asyncio.gather(
        *(world.schemas.register(ctx(user), "race", "1.0.0", BOOK_V1) for user in (ALICE, BOB, new_id())),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, (Forbidden, Conflict)) for r in results if isinstance(r, Exception))
    assert world.store.appends == 1


async def test_existing_version_is_a_conflict(world: World) -> None:
    await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    err = await refused(world, Conflict, world.schemas.register(ctx(), "book", "1.0.0", BOOK_V2))
    assert "schema version exists" in err.detail
    await refused(world, Conflict, world.schemas.register(ctx(), "book", "1.0.0+build.2", BOOK_V2))


@pytest.mark.parametrize(
    ("name", "version", "path"),
    [("Book", "1.0.0", "/name"), ("", "1.0.0", "/name"), ("_x" * 40, "1.0.0", "/name"), ("bo ok", "1.0.0", "/name"),
     ("book", "1.0", "/version"), ("book", "latest", "/version")],
)  # fmt: skip
async def test_bad_names_and_versions_are_422(world: World, name: str, version: str, path: str) -> None:
    err = await refused(world, ValidationFailed, world.schemas.register(ctx(), name, version, BOOK_V1))
    assert [e.path for e in err.errors] == [path]


async def test_invalid_json_schema_is_422_with_paths_under_schema(world: World) -> None:
    bad = {"type": "object", "properties": {"a": {"type": "text"}}, "required": "a"}
    err = await refused(world, ValidationFailed, world.schemas.register(ctx(), "book", "1.0.0", bad))
    assert err.reason == "not a valid JSON Schema"
    assert [e.path for e in err.errors] == ["/schema/properties/a/type", "/schema/required"]


async def test_migration_checks(world: World) -> None:
    first = world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1, {"from_version": "0.9.0", "transform": V1_TO_V2})
    err = await refused(world, ValidationFailed, first)
    assert err.errors[0].path == "/migration/from_version"
    await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    unknown = {"from_version": "0.9.0", "transform": V1_TO_V2}
    err = await refused(world, ValidationFailed, world.schemas.register(ctx(), "book", "2.0.0", BOOK_V2, unknown))
    assert err.errors[0].path == "/migration/from_version"
    broken = {"from_version": "1.0.0", "transform": "function migrate(d) { return d +; }"}
    err = await refused(world, ValidationFailed, world.schemas.register(ctx(), "book", "2.0.0", BOOK_V2, broken))
    assert err.errors[0].path == "/migration/transform" and "SyntaxError" in err.errors[0].message
    missing = {"from_version": "1.0.0", "transform": "function transform(d) { return d; }"}
    err = await refused(world, ValidationFailed, world.schemas.register(ctx(), "book", "2.0.0", BOOK_V2, missing))
    assert "does not define function migrate" in err.errors[0].message


async def test_bare_name_is_the_highest_version_not_the_last_registered(world: World) -> None:
    await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    await world.schemas.register(ctx(), "book", "2.0.0-rc.1", BOOK_V2)
    await world.schemas.register(ctx(), "book", "1.5.0", BOOK_V1)
    assert (await world.schemas.resolve("book")).id == "book@2.0.0-rc.1"
    await world.schemas.register(ctx(), "book", "2.0.0", BOOK_V3)
    assert (await world.schemas.resolve("book")).id == "book@2.0.0"
    for unknown in ["nope", "book@9.9.9", "Not A Name", "book@x"]:
        with pytest.raises(NotFound):
            await world.schemas.resolve(unknown)


async def test_validate_reports_every_error_sorted(world: World) -> None:
    await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    data = {"chapters": [{"title": "One"}, {}, {"title": 7}]}
    assert await world.schemas.validate(ctx(BOB), "book@1.0.0", data) == [
        FieldError("", "title is required"),
        FieldError("/chapters/1", "title is required"),
        FieldError("/chapters/2/title", "/chapters/2/title must be string"),
    ]
    assert await world.schemas.validate(ctx(BOB), "book", {"title": "T", "chapters": []}) == []


# --- buckets -------------------------------------------------------------------------------------


async def test_bucket_tree_create_rename_move(world: World) -> None:
    root = (await world.buckets.create(ctx(), "Novel", "project")).aggregate
    part = (await world.buckets.create(ctx(), "Part 1", "folder", root.id_str)).aggregate
    assert part.parent_id == root.id_str and part.owner_id == ALICE
    renamed = (await world.buckets.update(ctx(), part.id_str, name="Part One")).aggregate
    assert (renamed.name, renamed.parent_id, renamed.version) == ("Part One", root.id_str, 2)
    moved = (await world.buckets.update(ctx(), part.id_str, parent_id=None)).aggregate
    assert (moved.name, moved.parent_id) == ("Part One", None)
    back = (await world.buckets.update(ctx(), part.id_str, name="P1", parent_id=root.id_str)).aggregate
    assert (back.name, back.parent_id) == ("P1", root.id_str)
    assert [r.type for r in world.store.records[-3:]] == ["Bucket.Updated"] * 3
    kept = (await world.buckets.update(ctx(), part.id_str, parent_id=KEEP)).aggregate
    assert kept.parent_id == root.id_str


async def test_bucket_parent_must_exist_and_be_owned(world: World) -> None:
    theirs = (await world.buckets.create(ctx(BOB), "Theirs", "folder")).aggregate
    await refused(world, NotFound, world.buckets.create(ctx(), "x", "folder", new_id()))
    await refused(world, NotFound, world.buckets.create(ctx(), "x", "folder", "not-an-id"))
    await refused(world, Forbidden, world.buckets.create(ctx(), "x", "folder", theirs.id_str))
    mine = (await world.buckets.create(ctx(), "Mine", "folder")).aggregate
    await refused(world, Forbidden, world.buckets.update(ctx(), mine.id_str, parent_id=theirs.id_str))
    await refused(world, Forbidden, world.buckets.update(ctx(), theirs.id_str, name="mine now"))
    await refused(world, ValidationFailed, world.buckets.create(ctx(), " ", "folder"))


async def test_moving_under_a_descendant_is_a_422(world: World) -> None:
    a = (await world.buckets.create(ctx(), "a", "folder")).aggregate
    b = (await world.buckets.create(ctx(), "b", "folder", a.id_str)).aggregate
    c = (await world.buckets.create(ctx(), "c", "folder", b.id_str)).aggregate
    for target in (c.id_str, b.id_str, a.id_str):
        err = await refused(world, ValidationFailed, world.buckets.update(ctx(), a.id_str, parent_id=target))
        assert err.errors[0].path == "/parent_id"
    moved = (await world.buckets.update(ctx(), c.id_str, parent_id=a.id_str)).aggregate
    assert moved.parent_id == a.id_str


async def test_bucket_delete_refused_while_not_empty(world: World) -> None:
    parent = (await world.buckets.create(ctx(), "p", "folder")).aggregate
    child = (await world.buckets.create(ctx(), "c", "folder", parent.id_str)).aggregate
    await refused(world, Conflict, world.buckets.delete(ctx(), parent.id_str))
    blob = (await world.blobs.create(ctx(), {"x": 1}, bucket_ids=[child.id_str])).aggregate
    await refused(world, Conflict, world.buckets.delete(ctx(), child.id_str))
    await world.blobs.delete(ctx(), blob.id_str)
    await world.buckets.delete(ctx(), child.id_str)
    deleted = await world.buckets.delete(ctx(), parent.id_str)
    assert deleted.aggregate.deleted
    await refused(world, NotFound, world.buckets.update(ctx(), parent.id_str, name="again"))
    await refused(world, NotFound, world.buckets.create(ctx(), "x", "folder", parent.id_str))
    await refused(world, NotFound, world.blobs.create(ctx(), {}, bucket_ids=[parent.id_str]))


async def test_stale_if_match_is_412(world: World) -> None:
    bucket = (await world.buckets.create(ctx(), "b", "folder")).aggregate
    await world.buckets.update(ctx(), bucket.id_str, name="b2", expected_version=1)
    await refused(world, PreconditionFailed, world.buckets.update(ctx(), bucket.id_str, name="b3", expected_version=1))
    await refused(world, PreconditionFailed, world.buckets.delete(ctx(), bucket.id_str, expected_version=1))
    blob = (await world.blobs.create(ctx(), {"v": 1})).aggregate
    await world.blobs.update(ctx(), blob.id_str, {"v": 2}, expected_version=1)
    await refused(world, PreconditionFailed, world.blobs.update(ctx(), blob.id_str, {"v": 3}, expected_version=1))
    await refused(world, PreconditionFailed, world.blobs.delete(ctx(), blob.id_str, expected_version=1))


# --- blobs ---------------------------------------------------------------------------------------


async def test_blob_create_typed_and_filed(world: World) -> None:
    await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    a = (await world.buckets.create(ctx(), "a", "folder")).aggregate
    data = {"title": "T", "chapters": [{"title": "One"}]}
    saved = await world.blobs.create(ctx(), data, schema_id="book", bucket_ids=[a.id_str], processor_id=new_id())
    blob = saved.aggregate
    assert (blob.owner_id, blob.schema_id, blob.data, blob.bucket_ids) == (ALICE, "book@1.0.0", data, [a.id_str])
    assert world.store.records[-1].type == "Blob.Created"
    untyped = (await world.blobs.create(ctx(), "just text")).aggregate
    assert untyped.schema_id is None and untyped.bucket_ids == []


async def test_blob_create_refusals_append_nothing(world: World) -> None:
    await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    mine = (await world.buckets.create(ctx(), "a", "folder")).aggregate
    theirs = (await world.buckets.create(ctx(BOB), "b", "folder")).aggregate
    good = {"title": "T", "chapters": []}
    err = await refused(world, ValidationFailed, world.blobs.create(ctx(), {"chapters": [{}]}, schema_id="book@1.0.0"))
    assert err.detail == "validation failed: data does not satisfy schema book@1.0.0"
    assert err.errors == [FieldError("", "title is required"), FieldError("/chapters/0", "title is required")]
    await refused(world, NotFound, world.blobs.create(ctx(), good, schema_id="book@2.0.0"))
    await refused(world, NotFound, world.blobs.create(ctx(), good, schema_id="nope"))
    await refused(world, NotFound, world.blobs.create(ctx(), good, bucket_ids=[new_id()]))
    await refused(world, Forbidden, world.blobs.create(ctx(), good, bucket_ids=[mine.id_str, theirs.id_str]))
    await refused(world, ValidationFailed, world.blobs.create(ctx(), good, bucket_ids=[mine.id_str, mine.id_str]))
    await refused(world, ValidationFailed, world.blobs.create(ctx(), good, processor_id="proc"))
    await refused(world, Forbidden, world.blobs.create(ctx(None), good))


async def test_blob_update_is_validated_and_owner_only(world: World) -> None:
    await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    blob = (await world.blobs.create(ctx(), {"title": "T", "chapters": []}, schema_id="book")).aggregate
    await refused(world, ValidationFailed, world.blobs.update(ctx(), blob.id_str, {"title": 1, "chapters": []}))
    await refused(world, Forbidden, world.blobs.update(ctx(BOB), blob.id_str, {"title": "X", "chapters": []}))
    await refused(world, NotFound, world.blobs.update(ctx(), new_id(), {}))
    await refused(world, NotFound, world.blobs.update(ctx(), "../etc", {}))
    updated = (await world.blobs.update(ctx(), blob.id_str, {"title": "U", "chapters": []})).aggregate
    assert updated.data == {"title": "U", "chapters": []} and updated.version == 2


async def test_blob_move_is_one_event_keeping_order(world: World) -> None:
    a, b, c = [(await world.buckets.create(ctx(), n, "folder")).aggregate.id_str for n in "abc"]
    theirs = (await world.buckets.create(ctx(BOB), "t", "folder")).aggregate.id_str
    blob = (await world.blobs.create(ctx(), {}, bucket_ids=[a, b])).aggregate
    await refused(world, ValidationFailed, world.blobs.move(ctx(), blob.id_str, c, a))
    await refused(world, ValidationFailed, world.blobs.move(ctx(), blob.id_str, a, b))
    await refused(world, NotFound, world.blobs.move(ctx(), blob.id_str, a, new_id()))
    await refused(world, Forbidden, world.blobs.move(ctx(), blob.id_str, a, theirs))
    moved = await world.blobs.move(ctx(), blob.id_str, a, c)
    assert moved.aggregate.bucket_ids == [c, b]
    record = world.store.records[-1]
    assert (record.type, record.data) == ("Blob.Moved", {"from_bucket_id": a, "to_bucket_id": c, "bucket_ids": [c, b]})


async def test_blob_delete_then_gone(world: World) -> None:
    blob = (await world.blobs.create(ctx(), {"x": 1})).aggregate
    await refused(world, Forbidden, world.blobs.delete(ctx(BOB), blob.id_str))
    await world.blobs.delete(ctx(), blob.id_str)
    await refused(world, NotFound, world.blobs.delete(ctx(), blob.id_str))
    await refused(world, NotFound, world.blobs.update(ctx(), blob.id_str, {}))
    saved = await world.repo.get(Blob, blob.id_str)
    assert saved is not None and saved.aggregate.deleted


async def test_blob_migrates_along_the_registered_path(world: World) -> None:
    await world.book_schemas()
    data = {"title": "T", "chapters": [{"title": "a"}, {"title": "b"}]}
    blob = (await world.blobs.create(ctx(), data, schema_id="book@1.0.0")).aggregate
    migrated = (await world.blobs.migrate(ctx(), blob.id_str, "book")).aggregate
    assert migrated.schema_id == "book@3.0.0"
    assert migrated.data == {"name": "T", "chapters": data["chapters"], "count": 2}
    record = world.store.records[-1]
    assert record.type == "Blob.Migrated" and record.data["schema_id"] == "book@3.0.0"
    await refused(world, ValidationFailed, world.blobs.migrate(ctx(), blob.id_str, "book@3.0.0"))


async def test_blob_migration_refusals(world: World) -> None:
    await world.book_schemas()
    await world.schemas.register(ctx(), "book", "4.0.0", BOOK_V1)  # no migration: unreachable
    await world.schemas.register(ctx(), "other", "1.0.0", {"type": "object"})
    blob = (await world.blobs.create(ctx(), {"title": "T", "chapters": []}, schema_id="book@1.0.0")).aggregate
    for target in ("book@4.0.0", "other@1.0.0"):
        err = await refused(world, ValidationFailed, world.blobs.migrate(ctx(), blob.id_str, target))
        assert err.reason.startswith("no migration path from book@1.0.0 to ")
    untyped = (await world.blobs.create(ctx(), {"a": 1})).aggregate
    err = await refused(world, ValidationFailed, world.blobs.migrate(ctx(), untyped.id_str, "book@2.0.0"))
    assert err.reason == "no migration path from untyped to book@2.0.0"
    await refused(world, NotFound, world.blobs.migrate(ctx(), blob.id_str, "book@9.0.0"))
    await refused(world, Forbidden, world.blobs.migrate(ctx(BOB), blob.id_str, "book@2.0.0"))


async def test_blob_migration_failures_are_422(world: World) -> None:
    await world.schemas.register(ctx(), "doc", "1.0.0", {"type": "object"})
    throws = {"from_version": "1.0.0", "transform": "function migrate(d) { throw new Error('nope'); }"}
    await world.schemas.register(ctx(), "doc", "2.0.0", {"type": "object"}, throws)
    wrong = {"from_version": "1.0.0", "transform": "function migrate(d) { return {n: 'x'}; }"}
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    await world.schemas.register(ctx(), "doc", "3.0.0", schema, wrong)
    blob = (await world.blobs.create(ctx(), {}, schema_id="doc@1.0.0")).aggregate
    err = await refused(world, ValidationFailed, world.blobs.migrate(ctx(), blob.id_str, "doc@2.0.0"))
    assert "the migration to doc@2.0.0 failed: line 1: Error: nope" in err.errors[0].message
    err = await refused(world, ValidationFailed, world.blobs.migrate(ctx(), blob.id_str, "doc@3.0.0"))
    assert err.reason == "the migrated data does not satisfy schema doc@3.0.0"
    assert err.errors == [FieldError("/n", "/n must be integer")]


async def test_a_retried_command_lands_once(world: World) -> None:
    first = await world.blobs.create(ctx(command_id="same"), {"x": 1})
    again = await world.blobs.create(ctx(command_id="same"), {"x": 1})
    assert world.store.appends == 1
    assert (again.position, again.aggregate.id_str) == (first.position, first.aggregate.id_str)


async def test_a_retried_delete_or_migration_answers_like_the_first_attempt(world: World) -> None:
    """The same command id again (a client retrying with its Idempotency-Key) after the
    change landed: the original answer, nothing appended; another command id: refused."""
    bucket = (await world.buckets.create(ctx(), "b", "folder")).aggregate
    first = await world.buckets.delete(ctx(command_id="delete-once"), bucket.id_str)
    appends = world.store.appends
    again = await world.buckets.delete(ctx(command_id="delete-once"), bucket.id_str)
    assert (again.position, again.aggregate.deleted) == (first.position, True)
    assert world.store.appends == appends
    await refused(world, NotFound, world.buckets.delete(ctx(), bucket.id_str))

    await world.book_schemas()
    blob = (await world.blobs.create(ctx(), {"title": "T", "chapters": []}, schema_id="book@1.0.0")).aggregate
    migrated = await world.blobs.migrate(ctx(command_id="migrate-once"), blob.id_str, "book@2.0.0")
    appends = world.store.appends
    again = await world.blobs.migrate(ctx(command_id="migrate-once"), blob.id_str, "book@2.0.0")
    assert again.position == migrated.position and again.aggregate.schema_id == "book@2.0.0"
    assert world.store.appends == appends
    await refused(world, ValidationFailed, world.blobs.migrate(ctx(), blob.id_str, "book@2.0.0"))


async def test_decisions_fail_when_what_they_relied_on_changed(world: World) -> None:
    """Update validates against the schema it loaded; a migration in between is a 409."""
    await world.book_schemas()
    blob = (await world.blobs.create(ctx(), {"title": "T", "chapters": []}, schema_id="book@1.0.0")).aggregate
    other = Repository(world.store, world.repo.codec)
    other_blobs = BlobCommands(other, world.schemas, JavaScriptSandbox())
    original_get = world.repo.get

    async def get_then_migrate(cls: Any, aggregate_id: str, **kw: Any) -> Any:
        saved = await original_get(cls, aggregate_id, **kw)
        if cls is Blob:
            world.repo.get = original_get  # type: ignore[method-assign]
            await other_blobs.migrate(ctx(), aggregate_id, "book@2.0.0")
        return saved

    world.repo.get = get_then_migrate  # type: ignore[method-assign]
    with pytest.raises(ConcurrencyError):
        await world.blobs.update(ctx(), blob.id_str, {"title": "U", "chapters": []})
    assert world.store.records[-1].type == "Blob.Migrated"


# --- store fake and sandbox ---------------------------------------------------------------------


async def test_memory_store_checks_expectations_and_duplicates() -> None:
    store = MemoryEventStore()
    event = NewEvent(type="Blob.Created", version=1, at=Schema.Event.create_timestamp(), data={"a": [1]})
    assert (await store.append("blob", "x", event, 0, "c1")).position == 1
    assert (await store.append("blob", "x", event, 0, "c1")).duplicate  # stale expectation, own last event
    with pytest.raises(ConcurrencyError):
        await store.append("blob", "x", event, 0, "c2")
    assert (await store.append("blob", "y", event, 0, "c1")).duplicate  # same command id elsewhere
    assert (await store.append("blob", "x", event, 1, "c3")).position == 2
    assert [r.position for r in await store.load("blob", "x", until_position=1)] == [1]
    assert await store.last_position() == 2 and (await store.event_at(2)).command_id == "c3"  # type: ignore[union-attr]
    seen = []
    async for record in store.read_all(2):
        seen.append(record.position)
        break
    assert seen == [2]


def test_sandbox_runs_json_in_json_out_with_limits() -> None:
    sandbox = JavaScriptSandbox(timeout_ms=300, max_memory=32 * 1024 * 1024)
    assert sandbox.call("function migrate(d) { d.n += 1; return d; }", "migrate", {"n": 1, "s": "é"}) == {
        "n": 2, "s": "é"
    }  # fmt: skip
    assert sandbox.call("function f(d) { return typeof require + typeof fetch; }", "f", None) == "undefinedundefined"
    with pytest.raises(SandboxError, match="ran longer than 300 ms"):
        sandbox.call("function f(d) { while (true) {} }", "f", 1)
    with pytest.raises(SandboxError, match="memory"):
        sandbox.call("function f(d) { var a = []; while (true) a.push(new Array(1e5).fill(1)); }", "f", 1)
    with pytest.raises(SandboxError, match="returned nothing"):
        sandbox.call("function f(d) {}", "f", 1)
    assert sandbox.compile_check("while (true) {}", "migrate") == "ran longer than 300 ms"
    assert sandbox.compile_check("function migrate(d) { return d }", "migrate") is None
    assert sandbox.compile_check("function migrate(d) { return d }", "bad name") is not None
