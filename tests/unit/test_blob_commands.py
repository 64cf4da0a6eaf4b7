"""Blob commands on the write side (in-memory log, real bootstrap)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from domain.blob import Blob
from domain.errors import ConcurrencyError, Conflict, FieldError, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from domain.ids import new_id
from domain.schema import schema_aggregate_id
from tests.support.world import World
from tests.unit.content import ALICE, BOB, BOOK_V1, BOOK_V2, BOOK_V3, V1_TO_V2, V2_TO_V3, book_schemas, ctx, refused


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
    assert err.reason == "data does not satisfy schema book@1.0.0"
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
    await book_schemas(world)
    data = {"title": "T", "chapters": [{"title": "a"}, {"title": "b"}]}
    blob = (await world.blobs.create(ctx(), data, schema_id="book@1.0.0")).aggregate
    migrated = (await world.blobs.migrate(ctx(), blob.id_str, "book")).aggregate
    assert migrated.schema_id == "book@3.0.0"
    assert migrated.data == {"name": "T", "chapters": data["chapters"], "count": 2}
    record = world.store.records[-1]
    assert record.type == "Blob.Migrated" and record.data["schema_id"] == "book@3.0.0"
    await refused(world, ValidationFailed, world.blobs.migrate(ctx(), blob.id_str, "book@3.0.0"))


async def test_blob_migration_refusals(world: World) -> None:
    await book_schemas(world)
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

    await book_schemas(world)
    blob = (await world.blobs.create(ctx(), {"title": "T", "chapters": []}, schema_id="book@1.0.0")).aggregate
    migrated = await world.blobs.migrate(ctx(command_id="migrate-once"), blob.id_str, "book@2.0.0")
    appends = world.store.appends
    again = await world.blobs.migrate(ctx(command_id="migrate-once"), blob.id_str, "book@2.0.0")
    assert again.position == migrated.position and again.aggregate.schema_id == "book@2.0.0"
    assert world.store.appends == appends
    await refused(world, ValidationFailed, world.blobs.migrate(ctx(), blob.id_str, "book@2.0.0"))


async def test_a_decision_on_a_stale_copy_is_taken_again_on_the_log(world: World) -> None:
    """Another process migrates the blob after this one cached it: the update is decided
    again on the log's state, validated against the schema the blob has now (v2), and refused."""
    await book_schemas(world)
    blob = (await world.blobs.create(ctx(), {"title": "T", "chapters": []}, schema_id="book@1.0.0")).aggregate
    other = World(world.sandbox, world.validators, store=world.store)  # a second process on the same log
    await other.blobs.migrate(ctx(), blob.id_str, "book@2.0.0")
    err = await refused(world, ValidationFailed, world.blobs.update(ctx(), blob.id_str, {"title": "U", "chapters": []}))
    assert "book@2.0.0" in err.reason
    assert world.store.records[-1].type == "Blob.Migrated"
