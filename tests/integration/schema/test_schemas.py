"""Seed Task 3: register a book schema, validate data against it, version it (real HTTP, log, database).

Through the SDK as a user would; raw HTTP only for the X-Position header.
"""

from __future__ import annotations

from datetime import timedelta
import uuid
from typing import Any

import aiohttp
import pytest

from adapters.client import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from tests.support.sdk import SignUp, fails
from tests.support.wire import call

BOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "chapters": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "content": {"type": "string"}},
            },
        },
    },
    "required": ["title"],
}


def unique(prefix: str = "book") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def errors(result: Any) -> list[dict[str, str]]:
    return [e.model_dump() for e in result.errors]


async def test_register_a_book_schema_and_validate_valid_and_invalid_data(http: aiohttp.ClientSession,
                                                                          sign_up: SignUp) -> None:
    ink = await sign_up("schema")
    name = unique()
    schema = await ink.register_schema(name, "1.0.0", BOOK_SCHEMA)
    assert schema.id == f"{name}@1.0.0"
    assert schema.name == name and schema.version == "1.0.0" and schema.document == BOOK_SCHEMA
    assert schema.owner_id == ink.user_id and schema.created_at.utcoffset() == timedelta(0)
    assert schema.position > 0 and ink.last_position == schema.position
    # On the wire: the command's answer carries its log position in X-Position too.
    answer = await call(http, "POST", "/v1/schemas", ink,
                        json={"name": name, "version": "1.0.1", "schema": BOOK_SCHEMA})
    assert answer.status == 201 and int(answer.headers["X-Position"]) == answer.body["position"] > schema.position
    ink.observe_position(answer.body["position"])

    got = await ink.get_schema(schema.id)
    assert "migration" in got.model_fields_set and got.migration is None
    assert got.model_dump() == schema.model_dump(exclude={"position"})

    valid = {"title": "My Book", "chapters": [{"title": "Chapter 1", "content": "Content here"}]}
    result = await ink.validate(schema.id, valid)
    assert result.valid is True and result.errors == []

    result = await ink.validate(schema.id, {"chapters": "not an array"})
    assert result.valid is False
    assert errors(result) == [
        {"path": "", "message": "title is required"},
        {"path": "/chapters", "message": "/chapters must be array"},
    ]


async def test_every_error_is_reported_sorted_by_path(sign_up: SignUp) -> None:
    ink = await sign_up("schema")
    name = unique()
    await ink.register_schema(name, "1.0.0", BOOK_SCHEMA)
    result = await ink.validate(name, {"title": 7, "chapters": [{"title": "ok"}, {"title": 1, "content": 2}]})
    assert [e.path for e in result.errors] == ["/chapters/1/content", "/chapters/1/title", "/title"]
    assert errors(result)[2] == {"path": "/title", "message": "/title must be string"}


async def test_versions_bare_name_is_latest_and_list_is_newest_first(sign_up: SignUp) -> None:
    ink = await sign_up("schema")
    name = unique()
    v1 = await ink.register_schema(name, "1.0.0", BOOK_SCHEMA)
    v11_schema = {**BOOK_SCHEMA, "properties": {**BOOK_SCHEMA["properties"], "isbn": {"type": "string"}}}
    v11 = await ink.register_schema(name, "1.1.0", v11_schema)
    assert v11.id == f"{name}@1.1.0" and v11.position > v1.position

    latest = await ink.get_schema(name)
    assert latest.id == f"{name}@1.1.0" and latest.document == v11_schema
    assert (await ink.get_schema(f"{name}@1.0.0")).document == BOOK_SCHEMA

    page = await ink.list_schema_versions(name)
    assert [s.version for s in page.items] == ["1.1.0", "1.0.0"] and page.next_cursor is None

    # A patch registered later but lower in precedence does not become "latest".
    await ink.register_schema(name, "1.0.1", BOOK_SCHEMA)
    page = await ink.list_schema_versions(name, limit=2)
    assert [s.version for s in page.items] == ["1.1.0", "1.0.1"] and page.next_cursor
    rest = await ink.list_schema_versions(name, cursor=page.next_cursor)
    assert [s.version for s in rest.items] == ["1.0.0"] and rest.next_cursor is None
    assert (await ink.get_schema(name)).version == "1.1.0"


async def test_an_existing_version_is_409(sign_up: SignUp) -> None:
    ink = await sign_up("schema")
    name = unique()
    await ink.register_schema(name, "1.0.0", BOOK_SCHEMA)
    with fails(ConflictError):
        await ink.register_schema(name, "1.0.0", {})
    page = await ink.list_schema_versions(name)
    assert len(page.items) == 1 and page.items[0].document == BOOK_SCHEMA


async def test_an_invalid_json_schema_and_a_bad_name_are_422(sign_up: SignUp) -> None:
    ink = await sign_up("schema")
    with fails(ValidationFailedError) as caught:
        await ink.register_schema(unique(), "1.0.0", {"type": "no-such-type"})
    assert caught.value.errors and all(e["path"].startswith("/schema") for e in caught.value.errors)

    for name in ("Book", "-book", "", "a" * 65, "bo ok", "book@1"):
        with fails(ValidationFailedError) as caught:
            await ink.register_schema(name, "1.0.0", BOOK_SCHEMA)
        assert [e["path"] for e in caught.value.errors] == ["/name"], (name, caught.value)

    with fails(ValidationFailedError) as caught:
        await ink.register_schema(unique(), "1.0", BOOK_SCHEMA)
    assert [e["path"] for e in caught.value.errors] == ["/version"]


async def test_only_the_owner_adds_versions_but_everyone_reads(sign_up: SignUp) -> None:
    owner = await sign_up("owner")
    other = await sign_up("other")
    name = unique()
    await owner.register_schema(name, "1.0.0", BOOK_SCHEMA)
    with fails(ForbiddenError):
        await other.register_schema(name, "2.0.0", {})
    other.observe_position(owner.last_position)  # its reads see the owner's schema
    assert (await other.get_schema(name)).version == "1.0.0"
    assert (await other.validate(f"{name}@1.0.0", {"title": "x"})).valid is True


async def test_unknown_schemas_are_404(sign_up: SignUp) -> None:
    ink = await sign_up("schema")
    with fails(NotFoundError):
        await ink.get_schema(unique())
    with fails(NotFoundError):
        await ink.get_schema(f"{unique()}@1.0.0")
    with fails(NotFoundError):
        await ink.validate(unique(), {})
    page = await ink.list_schema_versions(unique())
    assert page.items == [] and page.next_cursor is None


async def test_a_migration_moves_a_blob_to_the_next_version(sign_up: SignUp) -> None:
    ink = await sign_up("schema")
    name = unique()
    await ink.register_schema(name, "1.0.0", BOOK_SCHEMA)
    v2_schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    transform = "function migrate(data) { return {name: data.title}; }"
    await ink.register_schema(name, "2.0.0", v2_schema, migration={"from_version": "1.0.0", "transform": transform})
    blob = await ink.create_blob({"title": "Old"}, schema_id=f"{name}@1.0.0")
    migrated = await ink.migrate_blob(blob.id, name)
    assert migrated.schema_id == f"{name}@2.0.0" and migrated.data == {"name": "Old"}
    assert migrated.version == 2
    assert (await ink.get_blob(blob.id)).model_dump() == migrated.model_dump(exclude={"position"})
    with fails(ValidationFailedError):
        await ink.migrate_blob(blob.id, f"{name}@1.0.0")


async def test_a_transform_that_does_not_compile_is_422(sign_up: SignUp) -> None:
    ink = await sign_up("schema")
    name = unique()
    await ink.register_schema(name, "1.0.0", BOOK_SCHEMA)
    with fails(ValidationFailedError) as caught:
        await ink.register_schema(name, "1.1.0", BOOK_SCHEMA, migration={
            "from_version": "1.0.0", "transform": "function migrate(data) { return ; ]"})
    assert [e["path"] for e in caught.value.errors] == ["/migration/transform"]
    with fails(ValidationFailedError) as caught:
        await ink.register_schema(name, "1.2.0", BOOK_SCHEMA, migration={
            "from_version": "0.9.0", "transform": "function migrate(d) { return d; }"})
    assert [e["path"] for e in caught.value.errors] == ["/migration/from_version"]


async def test_an_idempotency_key_replays_only_the_same_request(sign_up: SignUp) -> None:
    """Same key and body: the original answer, nothing new. Same key, another body: another command."""
    ink = await sign_up("schema")
    name = unique()
    key = uuid.uuid4().hex
    first = await ink.register_schema(name, "1.0.0", BOOK_SCHEMA, idempotency_key=key)
    assert await ink.register_schema(name, "1.0.0", BOOK_SCHEMA, idempotency_key=key) == first
    second = await ink.register_schema(name, "2.0.0", BOOK_SCHEMA, idempotency_key=key)
    assert second.version == "2.0.0" and second.position > first.position
    assert [s.version for s in (await ink.list_schema_versions(name)).items] == ["2.0.0", "1.0.0"]


async def test_a_chain_of_transforms_taking_more_than_five_seconds_in_all_is_422_and_changes_nothing(
        sign_up: SignUp) -> None:
    """A schema may have a thousand versions: a chain of 999 one-second transforms held the sandbox workers
    for minutes for one request. The 5 s are shared among the steps up front (waiting for a worker is not
    counted): twenty steps of 0.4 s each get 250 ms each, and the first one is stopped."""
    ink = await sign_up("schema")
    name = unique()
    await ink.register_schema(name, "1.0.0", BOOK_SCHEMA)
    slow = "function migrate(d) { var end = Date.now() + 400; while (Date.now() < end) {} return d; }"
    for n in range(1, 21):
        await ink.register_schema(name, f"{n + 1}.0.0", BOOK_SCHEMA,
                                  migration={"from_version": f"{n}.0.0", "transform": slow})
    blob = await ink.create_blob({"title": "Old"}, schema_id=f"{name}@1.0.0")
    with fails(ValidationFailedError) as caught:
        await ink.migrate_blob(blob.id, f"{name}@21.0.0")
    assert caught.value.errors[0]["path"] == "/schema_id"
    message = caught.value.errors[0]["message"]
    assert "ran longer than 250 ms" in message and "250 ms of the 5 s a migrate may take" in message, message
    kept = await ink.get_blob(blob.id)
    assert (kept.schema_id, kept.version) == (f"{name}@1.0.0", 1)
    quick = await ink.migrate_blob(blob.id, f"{name}@3.0.0")  # two steps fit
    assert quick.schema_id == f"{name}@3.0.0"


async def test_a_chain_longer_than_a_migrate_takes_is_422_naming_migration_runs(
        sign_up: SignUp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each step costs a fresh isolate and a round trip besides its run: a blob migrates through at most
    ``MAX_MIGRATE_STEPS`` (100) at once; three here, for a short test."""
    import commands.blobs

    monkeypatch.setattr(commands.blobs, "MAX_MIGRATE_STEPS", 3)
    ink = await sign_up("schema")
    name = unique()
    await ink.register_schema(name, "1.0.0", BOOK_SCHEMA)
    for n in range(1, 5):
        await ink.register_schema(name, f"{n + 1}.0.0", BOOK_SCHEMA, migration={
            "from_version": f"{n}.0.0", "transform": "function migrate(d) { return d; }"})
    blob = await ink.create_blob({"title": "Old"}, schema_id=f"{name}@1.0.0")
    with fails(ValidationFailedError) as caught:
        await ink.migrate_blob(blob.id, f"{name}@5.0.0")
    message = caught.value.errors[0]["message"]
    assert "has 4 steps" in message and "at most 3 at once" in message and "migration run" in message, message
    assert (await ink.migrate_blob(blob.id, f"{name}@4.0.0")).schema_id == f"{name}@4.0.0"
