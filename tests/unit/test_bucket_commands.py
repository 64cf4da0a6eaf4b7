"""Bucket commands on the write side (in-memory log, real bootstrap)."""

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
from commands.buckets import KEEP


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
