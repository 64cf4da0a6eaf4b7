"""Seed Task 3: register a book schema, validate data against it, version it (real HTTP, log, database)."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

from tests.integration.state.client import call, ok, problem
from tests.support.users import new_user

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


async def test_register_a_book_schema_and_validate_valid_and_invalid_data(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "schema")
    name = unique()
    answer = await call(http, "POST", "/v1/schemas", user, json={"name": name, "version": "1.0.0", "schema": BOOK_SCHEMA})
    assert answer.status == 201, answer.body
    schema = answer.body
    assert schema["id"] == f"{name}@1.0.0"
    assert schema["name"] == name and schema["version"] == "1.0.0" and schema["schema"] == BOOK_SCHEMA
    assert schema["owner_id"] == user.user_id and schema["created_at"].endswith("Z")
    assert int(answer.headers["X-Position"]) == schema["position"] > 0

    got = await ok(http, "GET", f"/v1/schemas/{schema['id']}", user)
    assert got == {k: v for k, v in schema.items() if k != "position"} | {"migration": None}

    valid = {"title": "My Book", "chapters": [{"title": "Chapter 1", "content": "Content here"}]}
    result = await ok(http, "POST", f"/v1/schemas/{schema['id']}/validate", user, json={"data": valid})
    assert result == {"valid": True, "errors": []}

    result = await ok(http, "POST", f"/v1/schemas/{schema['id']}/validate", user, json={"data": {"chapters": "not an array"}})
    assert result["valid"] is False
    assert result["errors"] == [
        {"path": "", "message": "title is required"},
        {"path": "/chapters", "message": "/chapters must be array"},
    ]


async def test_every_error_is_reported_sorted_by_path(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "schema")
    name = unique()
    await ok(http, "POST", "/v1/schemas", user, 201, json={"name": name, "version": "1.0.0", "schema": BOOK_SCHEMA})
    data = {"title": 7, "chapters": [{"title": "ok"}, {"title": 1, "content": 2}]}
    result = await ok(http, "POST", f"/v1/schemas/{name}/validate", user, json={"data": data})
    assert [e["path"] for e in result["errors"]] == ["/chapters/1/content", "/chapters/1/title", "/title"]
    assert result["errors"][2] == {"path": "/title", "message": "/title must be string"}


async def test_versions_bare_name_is_latest_and_list_is_newest_first(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "schema")
    name = unique()
    v1 = await ok(http, "POST", "/v1/schemas", user, 201, json={"name": name, "version": "1.0.0", "schema": BOOK_SCHEMA})
    v11_schema = {**BOOK_SCHEMA, "properties": {**BOOK_SCHEMA["properties"], "isbn": {"type": "string"}}}
    v11 = await ok(http, "POST", "/v1/schemas", user, 201, json={"name": name, "version": "1.1.0", "schema": v11_schema})
    assert v11["id"] == f"{name}@1.1.0" and v11["position"] > v1["position"]

    latest = await ok(http, "GET", f"/v1/schemas/{name}", user)
    assert latest["id"] == f"{name}@1.1.0" and latest["schema"] == v11_schema
    first = await ok(http, "GET", f"/v1/schemas/{name}@1.0.0", user)
    assert first["schema"] == BOOK_SCHEMA

    page = await ok(http, "GET", "/v1/schemas", user, params={"name": name})
    assert [s["version"] for s in page["items"]] == ["1.1.0", "1.0.0"] and page["next_cursor"] is None

    # A patch registered later but lower in precedence does not become "latest".
    await ok(http, "POST", "/v1/schemas", user, 201, json={"name": name, "version": "1.0.1", "schema": BOOK_SCHEMA})
    page = await ok(http, "GET", "/v1/schemas", user, params={"name": name, "limit": 2})
    assert [s["version"] for s in page["items"]] == ["1.1.0", "1.0.1"] and page["next_cursor"]
    rest = await ok(http, "GET", "/v1/schemas", user, params={"name": name, "cursor": page["next_cursor"]})
    assert [s["version"] for s in rest["items"]] == ["1.0.0"] and rest["next_cursor"] is None
    assert (await ok(http, "GET", f"/v1/schemas/{name}", user))["version"] == "1.1.0"


async def test_an_existing_version_is_409(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "schema")
    name = unique()
    await ok(http, "POST", "/v1/schemas", user, 201, json={"name": name, "version": "1.0.0", "schema": BOOK_SCHEMA})
    again = await call(http, "POST", "/v1/schemas", user, json={"name": name, "version": "1.0.0", "schema": {}})
    problem(again, 409, "conflict", "conflict")
    page = await ok(http, "GET", "/v1/schemas", user, params={"name": name})
    assert len(page["items"]) == 1 and page["items"][0]["schema"] == BOOK_SCHEMA


async def test_an_invalid_json_schema_and_a_bad_name_are_422(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "schema")
    bad = await call(http, "POST", "/v1/schemas", user,
                     json={"name": unique(), "version": "1.0.0", "schema": {"type": "no-such-type"}})
    body = problem(bad, 422, "validation_failed", "validation failed")
    assert body["errors"] and all(e["path"].startswith("/schema") for e in body["errors"])

    for name in ("Book", "-book", "", "a" * 65, "bo ok", "book@1"):
        answer = await call(http, "POST", "/v1/schemas", user, json={"name": name, "version": "1.0.0", "schema": BOOK_SCHEMA})
        body = problem(answer, 422, "validation_failed", "validation failed")
        assert [e["path"] for e in body["errors"]] == ["/name"], (name, body)

    answer = await call(http, "POST", "/v1/schemas", user, json={"name": unique(), "version": "1.0", "schema": BOOK_SCHEMA})
    assert [e["path"] for e in problem(answer, 422, "validation_failed", "validation failed")["errors"]] == ["/version"]


async def test_only_the_owner_adds_versions_but_everyone_reads(http: aiohttp.ClientSession) -> None:
    owner = await new_user(http, "owner")
    other = await new_user(http, "other")
    name = unique()
    await ok(http, "POST", "/v1/schemas", owner, 201, json={"name": name, "version": "1.0.0", "schema": BOOK_SCHEMA})
    answer = await call(http, "POST", "/v1/schemas", other, json={"name": name, "version": "2.0.0", "schema": {}})
    problem(answer, 403, "forbidden", "forbidden")
    assert (await ok(http, "GET", f"/v1/schemas/{name}", other))["version"] == "1.0.0"
    result = await ok(http, "POST", f"/v1/schemas/{name}@1.0.0/validate", other, json={"data": {"title": "x"}})
    assert result["valid"] is True


async def test_unknown_schemas_are_404(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "schema")
    problem(await call(http, "GET", f"/v1/schemas/{unique()}", user), 404, "not_found", "not found")
    problem(await call(http, "GET", f"/v1/schemas/{unique()}@1.0.0", user), 404, "not_found", "not found")
    answer = await call(http, "POST", f"/v1/schemas/{unique()}/validate", user, json={"data": {}})
    problem(answer, 404, "not_found", "not found")
    assert (await ok(http, "GET", "/v1/schemas", user, params={"name": unique()})) == {"items": [], "next_cursor": None}


async def test_a_migration_moves_a_blob_to_the_next_version(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "schema")
    name = unique()
    await ok(http, "POST", "/v1/schemas", user, 201, json={"name": name, "version": "1.0.0", "schema": BOOK_SCHEMA})
    v2_schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    transform = "function migrate(data) { return {name: data.title}; }"
    await ok(http, "POST", "/v1/schemas", user, 201, json={
        "name": name, "version": "2.0.0", "schema": v2_schema,
        "migration": {"from_version": "1.0.0", "transform": transform},
    })
    blob = await ok(http, "POST", "/v1/blobs", user, 201, json={"data": {"title": "Old"}, "schema_id": f"{name}@1.0.0"})
    migrated = await ok(http, "POST", f"/v1/blobs/{blob['id']}/migrate", user, json={"schema_id": name})
    assert migrated["schema_id"] == f"{name}@2.0.0" and migrated["data"] == {"name": "Old"}
    assert migrated["version"] == 2
    got = await ok(http, "GET", f"/v1/blobs/{blob['id']}", user)
    assert got == {k: v for k, v in migrated.items() if k != "position"}
    again = await call(http, "POST", f"/v1/blobs/{blob['id']}/migrate", user, json={"schema_id": f"{name}@1.0.0"})
    problem(again, 422, "validation_failed", "validation failed")


async def test_a_transform_that_does_not_compile_is_422(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "schema")
    name = unique()
    await ok(http, "POST", "/v1/schemas", user, 201, json={"name": name, "version": "1.0.0", "schema": BOOK_SCHEMA})
    answer = await call(http, "POST", "/v1/schemas", user, json={
        "name": name, "version": "1.1.0", "schema": BOOK_SCHEMA,
        "migration": {"from_version": "1.0.0", "transform": "function migrate(data) { return ; ]"},
    })
    body = problem(answer, 422, "validation_failed", "validation failed")
    assert [e["path"] for e in body["errors"]] == ["/migration/transform"]
    answer = await call(http, "POST", "/v1/schemas", user, json={
        "name": name, "version": "1.2.0", "schema": BOOK_SCHEMA,
        "migration": {"from_version": "0.9.0", "transform": "function migrate(d) { return d; }"},
    })
    body = problem(answer, 422, "validation_failed", "validation failed")
    assert [e["path"] for e in body["errors"]] == ["/migration/from_version"]


async def test_an_idempotency_key_replays_only_the_same_request(http: aiohttp.ClientSession) -> None:
    """Same key and body: the original answer, nothing new. Same key, another body: another command."""
    user = await new_user(http, "schema")
    name = unique()
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"name": name, "version": "1.0.0", "schema": BOOK_SCHEMA}
    first = await ok(http, "POST", "/v1/schemas", user, 201, json=body, headers=headers)
    assert await ok(http, "POST", "/v1/schemas", user, 201, json=body, headers=headers) == first
    second = await ok(http, "POST", "/v1/schemas", user, 201, json={**body, "version": "2.0.0"}, headers=headers)
    assert second["version"] == "2.0.0" and second["position"] > first["position"]
    page = await ok(http, "GET", "/v1/schemas", user, params={"name": name})
    assert [s["version"] for s in page["items"]] == ["2.0.0", "1.0.0"]
