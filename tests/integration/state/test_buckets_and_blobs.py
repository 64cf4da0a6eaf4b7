"""Seed Task 4: buckets and blobs end to end (real HTTP, real log, real database)."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import aiohttp

from tests.integration.state.client import call, create_blob, create_bucket, ok, problem
from tests.support.system import RunningSystem
from tests.support.users import new_user

BOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "chapters": {
            "type": "array",
            "items": {"type": "object", "properties": {"title": {"type": "string"}, "content": {"type": "string"}}},
        },
    },
    "required": ["title"],
}


async def register_book_schema(http: aiohttp.ClientSession, user: Any) -> str:
    name = f"book-{uuid.uuid4().hex[:10]}"
    body = await ok(http, "POST", "/v1/schemas", user, 201, json={"name": name, "version": "1.0.0", "schema": BOOK_SCHEMA})
    return body["id"]


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


async def test_bucket_hierarchy_blob_in_bucket_query_and_move(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    schema_id = await register_book_schema(http, user)

    root = await ok(http, "POST", "/v1/buckets", user, 201,
                    json={"user_id": user.user_id, "name": "My Books", "type": "library"})
    assert root["parent_id"] is None and root["owner_id"] == user.user_id and root["version"] == 1
    book = await create_bucket(http, user, "Adventure Novel", "book", root["id"])
    assert book["parent_id"] == root["id"]

    data = {"title": "Adventure Novel",
            "chapters": [{"title": "The Beginning", "content": "It was a dark and stormy night..."}]}
    answer = await call(http, "POST", "/v1/blobs", user,
                        json={"user_id": user.user_id, "schema_id": schema_id, "data": data, "bucket_ids": [book["id"]]})
    assert answer.status == 201, answer.body
    blob = answer.body
    assert answer.headers["ETag"] == '"1"' and int(answer.headers["X-Position"]) == blob["position"]
    assert blob["data"] == data and blob["schema_id"] == schema_id and blob["bucket_ids"] == [book["id"]]
    assert blob["owner_id"] == user.user_id and blob["processor_id"] is None and blob["version"] == 1

    got = await call(http, "GET", f"/v1/blobs/{blob['id']}", user)
    assert got.status == 200 and got.headers["ETag"] == '"1"'
    assert got.body == {k: v for k, v in blob.items() if k != "position"}

    page = await ok(http, "GET", "/v1/blobs", user, params={"bucket_id": book["id"]})
    assert ids(page) == [blob["id"]] and page["next_cursor"] is None
    assert ids(await ok(http, "GET", "/v1/blobs", user, params={"schema_id": schema_id})) == [blob["id"]]
    assert ids(await ok(http, "GET", "/v1/blobs", user, params={"schema_id": schema_id.split("@")[0]})) == [blob["id"]]

    assert ids(await ok(http, "GET", "/v1/buckets", user)) == [root["id"]]
    archive = await create_bucket(http, user, "Archived", "archive", root["id"])
    children = await ok(http, "GET", "/v1/buckets", user, params={"parent_id": root["id"]})
    assert ids(children) == [book["id"], archive["id"]]

    moved = await ok(http, "POST", f"/v1/blobs/{blob['id']}/move", user,
                     json={"from_bucket_id": book["id"], "to_bucket_id": archive["id"]})
    assert moved["bucket_ids"] == [archive["id"]] and moved["version"] == 2
    assert ids(await ok(http, "GET", "/v1/blobs", user, params={"bucket_id": archive["id"]})) == [blob["id"]]
    assert ids(await ok(http, "GET", "/v1/blobs", user, params={"bucket_id": book["id"]})) == []


async def test_blob_update_delete_and_bucket_rename_and_move(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    schema_id = await register_book_schema(http, user)
    a = await create_bucket(http, user, "A")
    b = await create_bucket(http, user, "B")
    blob = await create_blob(http, user, {"title": "one"}, schema_id=schema_id, bucket_ids=[a["id"]])

    updated = await ok(http, "PUT", f"/v1/blobs/{blob['id']}", user, json={"data": {"title": "two"}},
                       headers={"If-Match": '"1"'})
    assert updated["data"] == {"title": "two"} and updated["version"] == 2
    invalid = await call(http, "PUT", f"/v1/blobs/{blob['id']}", user, json={"data": {"title": 3}})
    assert problem(invalid, 422, "validation_failed", "validation failed")["errors"] == [
        {"path": "/title", "message": "/title must be string"}
    ]

    # PATCH: a rename keeps the parent; parent_id moves; parent_id null moves to the root.
    renamed = await ok(http, "PATCH", f"/v1/buckets/{b['id']}", user, json={"name": "B2"})
    assert renamed["name"] == "B2" and renamed["parent_id"] is None and renamed["version"] == 2
    under = await ok(http, "PATCH", f"/v1/buckets/{b['id']}", user, json={"parent_id": a["id"]})
    assert under["parent_id"] == a["id"] and under["name"] == "B2"
    kept = await ok(http, "PATCH", f"/v1/buckets/{b['id']}", user, json={"name": "B3"})
    assert kept["parent_id"] == a["id"]
    assert (await ok(http, "GET", f"/v1/buckets/{b['id']}", user)) == {k: v for k, v in kept.items() if k != "position"}
    back = await ok(http, "PATCH", f"/v1/buckets/{b['id']}", user, json={"parent_id": None})
    assert back["parent_id"] is None
    assert ids(await ok(http, "GET", "/v1/buckets", user)) == [a["id"], b["id"]]

    deleted = await ok(http, "DELETE", f"/v1/blobs/{blob['id']}", user)
    assert deleted["deleted"] is True and deleted["version"] == 3
    problem(await call(http, "GET", f"/v1/blobs/{blob['id']}", user), 404, "not_found", "not found")
    problem(await call(http, "DELETE", f"/v1/blobs/{blob['id']}", user), 404, "not_found", "not found")
    gone = await ok(http, "DELETE", f"/v1/buckets/{a['id']}", user)
    assert gone["deleted"] is True
    problem(await call(http, "GET", f"/v1/buckets/{a['id']}", user), 404, "not_found", "not found")


async def test_a_blob_that_fails_validation_changes_nothing(system: RunningSystem, http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    schema_id = await register_book_schema(http, user)
    bucket = await create_bucket(http, user, "Drafts")
    await create_blob(http, user, {"title": "kept"}, schema_id=schema_id, bucket_ids=[bucket["id"]])
    before = await ok(http, "GET", "/v1/blobs", user, params={"bucket_id": bucket["id"]})
    last = await system.container.store.last_position()

    answer = await call(http, "POST", "/v1/blobs", user,
                        json={"data": {"chapters": [{"title": 1}]}, "schema_id": schema_id, "bucket_ids": [bucket["id"]]})
    body = problem(answer, 422, "validation_failed", "validation failed")
    assert body["errors"] == [
        {"path": "", "message": "title is required"},
        {"path": "/chapters/0/title", "message": "/chapters/0/title must be string"},
    ]
    for bad in ({"data": {}, "schema_id": f"nope-{uuid.uuid4().hex[:8]}"},
                {"data": {}, "bucket_ids": [str(uuid.uuid4())]},
                {"data": {"title": "x"}, "schema_id": schema_id, "bucket_ids": [bucket["id"], bucket["id"]]}):
        answer = await call(http, "POST", "/v1/blobs", user, json=bad)
        assert answer.status in (404, 422), answer.body

    assert await system.container.store.last_position() == last
    assert await ok(http, "GET", "/v1/blobs", user, params={"bucket_id": bucket["id"]}) == before


async def test_unstorable_text_is_refused_and_the_read_model_keeps_up(http: aiohttp.ClientSession) -> None:
    """NUL cannot be stored in PostgreSQL text or jsonb: accepting it would halt the projection."""
    user = await new_user(http, "state")
    for method, path, body in (("POST", "/v1/blobs", {"data": {"t": "a\x00b"}}),
                               ("POST", "/v1/blobs", {"data": {"a\x00": 1}}),
                               ("POST", "/v1/buckets", {"name": "a\x00b", "type": "x"}),
                               ("POST", "/v1/buckets", {"name": "ab", "type": "\x00"}),
                               ("POST", "/v1/schemas", {"name": f"s{uuid.uuid4().hex[:8]}", "version": "1.0.0",
                                                        "schema": {"description": "\x00"}}),
                               ("POST", "/v1/auth/register", {"email": f"{uuid.uuid4().hex}@example.com",
                                                              "password": "long enough", "username": "a\x00"})):
        answer = await call(http, method, path, user, json=body)
        problem(answer, 422, "validation_failed", "validation failed")
    blob = await create_blob(http, user, {"t": "fine"})
    assert (await ok(http, "GET", f"/v1/blobs/{blob['id']}", user))["data"] == {"t": "fine"}
    assert (await ok(http, "GET", "/v1/auth/me", user))["user_id"] == user.user_id


async def test_a_move_under_a_descendant_is_422_and_a_non_empty_delete_is_409(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    top = await create_bucket(http, user, "top")
    mid = await create_bucket(http, user, "mid", parent_id=top["id"])
    leaf = await create_bucket(http, user, "leaf", parent_id=mid["id"])

    for parent in (leaf["id"], mid["id"], top["id"]):
        answer = await call(http, "PATCH", f"/v1/buckets/{top['id']}", user, json={"parent_id": parent})
        body = problem(answer, 422, "validation_failed", "validation failed")
        assert [e["path"] for e in body["errors"]] == ["/parent_id"]
    assert (await ok(http, "GET", f"/v1/buckets/{top['id']}", user))["version"] == 1

    problem(await call(http, "DELETE", f"/v1/buckets/{mid['id']}", user), 409, "conflict", "conflict")
    blob = await create_blob(http, user, {"x": 1}, bucket_ids=[leaf["id"]])
    problem(await call(http, "DELETE", f"/v1/buckets/{leaf['id']}", user), 409, "conflict", "conflict")
    await ok(http, "DELETE", f"/v1/blobs/{blob['id']}", user)
    await ok(http, "DELETE", f"/v1/buckets/{leaf['id']}", user)
    await ok(http, "DELETE", f"/v1/buckets/{mid['id']}", user)
    await ok(http, "DELETE", f"/v1/buckets/{top['id']}", user)


async def test_someone_elses_bucket_and_blob_are_403(http: aiohttp.ClientSession) -> None:
    owner = await new_user(http, "owner")
    other = await new_user(http, "other")
    bucket = await create_bucket(http, owner, "private")
    blob = await create_blob(http, owner, {"secret": True}, bucket_ids=[bucket["id"]])
    mine = await create_bucket(http, other, "mine")

    bid = bucket["id"]
    for method, path, body, params in (
        ("GET", f"/v1/buckets/{bid}", None, None),
        ("PATCH", f"/v1/buckets/{bid}", {"name": "taken"}, None),
        ("DELETE", f"/v1/buckets/{bid}", None, None),
        ("GET", "/v1/buckets", None, {"parent_id": bid}),
        ("GET", "/v1/blobs", None, {"bucket_id": bid}),
        ("POST", "/v1/buckets", {"name": "child", "type": "x", "parent_id": bid}, None),
        ("POST", "/v1/blobs", {"data": {}, "bucket_ids": [bid]}, None),
        ("PATCH", f"/v1/buckets/{mine['id']}", {"parent_id": bid}, None),
        ("GET", f"/v1/blobs/{blob['id']}", None, None),
        ("GET", f"/v1/blobs/{blob['id']}", None, {"as_of": blob["position"]}),
        ("GET", f"/v1/blobs/{blob['id']}/history", None, None),
        ("PUT", f"/v1/blobs/{blob['id']}", {"data": {}}, None),
        ("POST", f"/v1/blobs/{blob['id']}/move", {"from_bucket_id": bid, "to_bucket_id": mine["id"]}, None),
        ("DELETE", f"/v1/blobs/{blob['id']}", None, None),
    ):
        answer = await call(http, method, path, other, json=body, params=params)
        problem(answer, 403, "forbidden", "forbidden")
    # A body user_id that is not the token's subject is refused too.
    answer = await call(http, "POST", "/v1/buckets", other, json={"name": "x", "type": "x", "user_id": owner.user_id})
    problem(answer, 403, "forbidden", "forbidden")
    # The owner's moving a blob into someone else's bucket is refused.
    answer = await call(http, "POST", f"/v1/blobs/{blob['id']}/move", owner,
                        json={"from_bucket_id": bid, "to_bucket_id": mine["id"]})
    problem(answer, 403, "forbidden", "forbidden")
    assert (await ok(http, "GET", f"/v1/blobs/{blob['id']}", owner))["version"] == 1
    assert (await ok(http, "GET", f"/v1/buckets/{bid}", owner))["name"] == "private"


async def test_unknown_ids_are_404(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    unknown = str(uuid.uuid4())
    for method, path, body in (("GET", f"/v1/buckets/{unknown}", None), ("GET", "/v1/buckets/not-an-id", None),
                               ("GET", f"/v1/blobs/{unknown}", None), ("GET", "/v1/blobs/not-an-id", None),
                               ("GET", f"/v1/blobs/{unknown}/history", None),
                               ("PUT", f"/v1/blobs/{unknown}", {"data": 1}),
                               ("PATCH", f"/v1/buckets/{unknown}", {"name": "x"}),
                               ("POST", "/v1/buckets", {"name": "x", "type": "y", "parent_id": unknown})):
        problem(await call(http, method, path, user, json=body), 404, "not_found", "not found")


async def test_a_stale_if_match_is_412(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    blob = await create_blob(http, user, {"n": 1})
    first = await call(http, "PUT", f"/v1/blobs/{blob['id']}", user, json={"data": {"n": 2}}, headers={"If-Match": '"1"'})
    assert first.status == 200 and first.headers["ETag"] == '"2"'
    stale = await call(http, "PUT", f"/v1/blobs/{blob['id']}", user, json={"data": {"n": 3}}, headers={"If-Match": '"1"'})
    problem(stale, 412, "precondition_failed", "precondition failed")
    assert (await ok(http, "GET", f"/v1/blobs/{blob['id']}", user))["data"] == {"n": 2}
    problem(await call(http, "DELETE", f"/v1/blobs/{blob['id']}", user, headers={"If-Match": '"1"'}),
            412, "precondition_failed", "precondition failed")

    bucket = await create_bucket(http, user, "b")
    await ok(http, "PATCH", f"/v1/buckets/{bucket['id']}", user, json={"name": "c"}, headers={"If-Match": '"1"'})
    problem(await call(http, "PATCH", f"/v1/buckets/{bucket['id']}", user, json={"name": "d"}, headers={"If-Match": '"1"'}),
            412, "precondition_failed", "precondition failed")
    await ok(http, "DELETE", f"/v1/buckets/{bucket['id']}", user, headers={"If-Match": '"2"'})


async def test_history_and_as_of_time_travel(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    a = await create_bucket(http, user, "A")
    b = await create_bucket(http, user, "B")
    created = await create_blob(http, user, {"draft": 1}, bucket_ids=[a["id"]])
    bid = created["id"]
    updated = await ok(http, "PUT", f"/v1/blobs/{bid}", user, json={"data": {"draft": 2}})
    moved = await ok(http, "POST", f"/v1/blobs/{bid}/move", user, json={"from_bucket_id": a["id"], "to_bucket_id": b["id"]})
    deleted = await ok(http, "DELETE", f"/v1/blobs/{bid}", user)

    history = await ok(http, "GET", f"/v1/blobs/{bid}/history", user)
    items = history["items"]
    assert [i["type"] for i in items] == ["Blob.Created", "Blob.Updated", "Blob.Moved", "Blob.Deleted"]
    assert [i["position"] for i in items] == [created["position"], updated["position"], moved["position"], deleted["position"]]
    assert [i["version"] for i in items] == [1, 2, 3, 4]
    assert all(i["actor"] == user.user_id and i["at"].endswith("Z") for i in items)
    assert items[0]["data"]["data"] == {"draft": 1} and items[1]["data"] == {"data": {"draft": 2}}
    assert items[2]["data"]["to_bucket_id"] == b["id"]

    def strip(answer: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in answer.items() if k not in ("position", "deleted")}

    then = await call(http, "GET", f"/v1/blobs/{bid}", user, params={"as_of": created["position"]})
    assert then.status == 200 and then.body == strip(created) and then.headers["ETag"] == '"1"'
    # Any position between two changes shows the earlier one.
    assert (await ok(http, "GET", f"/v1/blobs/{bid}", user, params={"as_of": moved["position"] - 1})) == strip(updated)
    assert (await ok(http, "GET", f"/v1/blobs/{bid}", user, params={"as_of": moved["position"]})) == strip(moved)
    problem(await call(http, "GET", f"/v1/blobs/{bid}", user, params={"as_of": created["position"] - 1}),
            404, "not_found", "not found")
    problem(await call(http, "GET", f"/v1/blobs/{bid}", user, params={"as_of": deleted["position"]}),
            404, "not_found", "not found")
    problem(await call(http, "GET", f"/v1/blobs/{bid}", user, params={"as_of": 0}), 400, "bad_request", "bad request")


async def test_cursor_paging_visits_every_item_once_in_order(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    bucket = await create_bucket(http, user, "pages")
    made = [(await create_blob(http, user, {"i": i}, bucket_ids=[bucket["id"]]))["id"] for i in range(23)]
    for params in ({"bucket_id": bucket["id"]}, {}):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            query = {**params, "limit": 5, **({"cursor": cursor} if cursor else {})}
            page = await ok(http, "GET", "/v1/blobs", user, params=query)
            assert len(page["items"]) <= 5
            seen += ids(page)
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made and pages == 5
    for i in range(7):
        await create_bucket(http, user, f"child {i}", parent_id=bucket["id"])
    first = await ok(http, "GET", "/v1/buckets", user, params={"parent_id": bucket["id"], "limit": 4})
    rest = await ok(http, "GET", "/v1/buckets", user, params={"parent_id": bucket["id"], "cursor": first["next_cursor"]})
    assert [b["name"] for b in first["items"] + rest["items"]] == [f"child {i}" for i in range(7)]

    problem(await call(http, "GET", "/v1/blobs", user, params={"limit": 501}), 400, "bad_request", "bad request")
    problem(await call(http, "GET", "/v1/blobs", user, params={"limit": 0}), 400, "bad_request", "bad request")
    problem(await call(http, "GET", "/v1/blobs", user, params={"cursor": "garbage!"}), 400, "bad_request", "bad request")
    for forged, path, extra in ((["2026-01-01T00:00:00+00:00", "a\x00"], "/v1/blobs", {}),
                                (["not a time", "x"], "/v1/buckets", {}),
                                ([2**70, 0, 0, "~"], "/v1/schemas", {"name": "book"}),
                                ([1, 2, 3, "a\x00"], "/v1/schemas", {"name": "book"})):
        cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        answer = await call(http, "GET", path, user, params={"cursor": cursor, **extra})
        problem(answer, 400, "bad_request", "bad request")
    assert len((await ok(http, "GET", "/v1/blobs", user, params={"limit": 500}))["items"]) == 23


async def test_every_query_sees_the_blob_created_just_before(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "ryw")
    bucket = await create_bucket(http, user, "read-your-writes")
    created: list[str] = []
    for i in range(200):
        blob = await create_blob(http, user, {"i": i}, bucket_ids=[bucket["id"]])
        created.append(blob["id"])
        page = await ok(http, "GET", "/v1/blobs", user, params={"bucket_id": bucket["id"], "limit": 500})
        assert ids(page)[-1] == blob["id"] and len(page["items"]) == i + 1, i
    assert ids(page) == created


async def test_idempotency_key_creates_one_blob(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    bucket = await create_bucket(http, user, "idem")
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"data": {"once": True}, "bucket_ids": [bucket["id"]]}
    first = await ok(http, "POST", "/v1/blobs", user, 201, json=body, headers=headers)
    again = await ok(http, "POST", "/v1/blobs", user, 201, json=body, headers=headers)
    assert again == first
    assert ids(await ok(http, "GET", "/v1/blobs", user, params={"bucket_id": bucket["id"]})) == [first["id"]]

    # Retries of changes whose decision would now fail on the state they produced.
    other = await create_bucket(http, user, "other")
    move = {"from_bucket_id": bucket["id"], "to_bucket_id": other["id"]}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    moved = await ok(http, "POST", f"/v1/blobs/{first['id']}/move", user, json=move, headers=headers)
    assert await ok(http, "POST", f"/v1/blobs/{first['id']}/move", user, json=move, headers=headers) == moved
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    deleted = await ok(http, "DELETE", f"/v1/blobs/{first['id']}", user, headers=headers)
    assert await ok(http, "DELETE", f"/v1/blobs/{first['id']}", user, headers=headers) == deleted
    history = await ok(http, "GET", f"/v1/blobs/{first['id']}/history", user)
    assert [i["type"] for i in history["items"]] == ["Blob.Created", "Blob.Moved", "Blob.Deleted"]


async def test_malformed_bodies_are_400(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    for path, body in (("/v1/blobs", {"data": 1, "extra": 2}), ("/v1/blobs", {"data": 1, "bucket_ids": "x"}),
                       ("/v1/buckets", {"name": 5, "type": "x"}), ("/v1/buckets", {"name": "x"}),
                       ("/v1/schemas", {"name": "x", "version": "1.0.0", "schema": []})):
        problem(await call(http, "POST", path, user, json=body), 400, "bad_request", "bad request")


async def test_any_json_value_is_blob_data_and_comes_back_unchanged(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "state")
    bucket = await create_bucket(http, user, "values")
    values: list[Any] = ["", "123", '{"a": 1}', "text", 0, 1.5, True, None, [], [1, "2"], {}, {"nested": {"x": [None]}}]
    for value in values:
        blob = await create_blob(http, user, value, bucket_ids=[bucket["id"]])
        assert blob["data"] == value
        assert (await ok(http, "GET", f"/v1/blobs/{blob['id']}", user))["data"] == value
    page = await ok(http, "GET", "/v1/blobs", user, params={"bucket_id": bucket["id"]})
    assert [item["data"] for item in page["items"]] == values
