"""Schema registry commands on the write side (in-memory log, real bootstrap)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.validation import JsonSchemaValidator
from commands.schemas import SchemaRegistry
from domain.blob import Blob
from domain.errors import ConcurrencyError, Conflict, FieldError, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from domain.ids import new_id
from domain.schema import schema_aggregate_id
from tests.support.world import World
from tests.unit.content import ALICE, BOB, BOOK_V1, BOOK_V2, BOOK_V3, V1_TO_V2, V2_TO_V3, book_schemas, ctx, refused


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
    assert "schema version exists" in err.reason
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
    registry = SchemaRegistry(world.repo, world.validators)
    assert (await registry.resolve("book")).id == "book@2.0.0-rc.1"
    await world.schemas.register(ctx(), "book", "2.0.0", BOOK_V3)
    assert (await registry.resolve("book")).id == "book@2.0.0"
    for unknown in ["nope", "book@9.9.9", "Not A Name", "book@x"]:
        with pytest.raises(NotFound):
            await registry.resolve(unknown)


async def test_validate_reports_every_error_sorted(world: World) -> None:
    await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    data = {"chapters": [{"title": "One"}, {}, {"title": 7}]}
    assert await world.schemas.validate(ctx(BOB), "book@1.0.0", data) == [
        FieldError("", "title is required"),
        FieldError("/chapters/1", "title is required"),
        FieldError("/chapters/2/title", "/chapters/2/title must be string"),
    ]
    assert await world.schemas.validate(ctx(BOB), "book", {"title": "T", "chapters": []}) == []


async def test_an_exact_version_is_read_from_the_log_once(world: World) -> None:
    """Versions never change, so `name@version` is remembered; a bare name and unknown ids always ask the log."""
    await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    registry = SchemaRegistry(world.repo, JsonSchemaValidator())
    loads = 0  # times the log is asked: a full read, or the check of a kept copy

    def counted(method: Any) -> Any:
        async def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal loads
            loads += 1
            return await method(*args, **kwargs)

        return counting

    world.store.load = counted(world.store.load)  # type: ignore[method-assign]
    world.store.has_events_after = counted(world.store.has_events_after)  # type: ignore[method-assign]
    for _ in range(3):
        assert (await registry.resolve("book@1.0.0")).id == "book@1.0.0"
    assert loads == 1
    await registry.resolve("book")
    await registry.resolve("book")
    assert loads == 3
    for _ in range(2):
        with pytest.raises(NotFound):
            await registry.resolve("book@2.0.0")
    assert loads == 5
    await world.schemas.register(ctx(), "book", "2.0.0", BOOK_V2)  # now it exists: found at once
    assert (await registry.resolve("book@2.0.0")).id == "book@2.0.0"
