"""Seed Task 4: buckets and blobs end to end (real HTTP, real log, real database).

Users are SDK clients; errors are its typed exceptions. Raw HTTP remains where
the assertion is about the wire: a body ``user_id``, ETag and X-Position
headers, problem+json, malformed bodies and forged cursors, DELETE with an
Idempotency-Key.
"""

from __future__ import annotations

from datetime import timedelta
import base64
import json
import uuid
from typing import Any

import aiohttp
import pytest

from adapters.client import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InkstreamClient,
    NotFoundError,
    PreconditionFailedError,
    ValidationFailedError,
)
from tests.support.sdk import SignUp, fails
from tests.support.system import RunningSystem
from tests.support.wire import call, problem

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


async def register_book_schema(ink: InkstreamClient) -> str:
    return (await ink.register_schema(f"book-{uuid.uuid4().hex[:10]}", "1.0.0", BOOK_SCHEMA)).id


def ids(page: Any) -> list[str]:
    return [item.id for item in page.items]


def unchanged(answer: Any, *drop: str) -> dict[str, Any]:
    """A command's answer as a query shows the resource: without ``position`` (and ``deleted``)."""
    return answer.model_dump(exclude={"position", *drop})


async def test_bucket_hierarchy_blob_in_bucket_query_and_move(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("state")
    schema_id = await register_book_schema(ink)

    # The seed's requests name the user in the body too (it must be the token's subject).
    answer = await call(http, "POST", "/v1/buckets", ink,
                        json={"user_id": ink.user_id, "name": "My Books", "type": "library"})
    assert answer.status == 201, answer.body
    root = answer.body
    assert root["parent_id"] is None and root["owner_id"] == ink.user_id and root["version"] == 1
    ink.observe_position(root["position"])
    book = await ink.create_bucket("Adventure Novel", "book", root["id"])
    assert book.parent_id == root["id"]

    data = {"title": "Adventure Novel",
            "chapters": [{"title": "The Beginning", "content": "It was a dark and stormy night..."}]}
    answer = await call(http, "POST", "/v1/blobs", ink,
                        json={"user_id": ink.user_id, "schema_id": schema_id, "data": data, "bucket_ids": [book.id]})
    assert answer.status == 201, answer.body
    blob = answer.body
    assert answer.headers["ETag"] == '"1"' and int(answer.headers["X-Position"]) == blob["position"]
    assert blob["data"] == data and blob["schema_id"] == schema_id and blob["bucket_ids"] == [book.id]
    assert blob["owner_id"] == ink.user_id and blob["processor_id"] is None and blob["version"] == 1
    ink.observe_position(blob["position"])

    got = await call(http, "GET", f"/v1/blobs/{blob['id']}", ink)
    assert got.status == 200 and got.headers["ETag"] == '"1"'
    assert got.body == {k: v for k, v in blob.items() if k != "position"}
    assert (await ink.get_blob(blob["id"])).model_dump(mode="json") == got.body

    page = await ink.list_blobs(bucket_id=book.id)
    assert ids(page) == [blob["id"]] and page.next_cursor is None
    assert ids(await ink.list_blobs(schema_id=schema_id)) == [blob["id"]]
    assert ids(await ink.list_blobs(schema_id=schema_id.split("@")[0])) == [blob["id"]]

    assert ids(await ink.list_buckets()) == [root["id"]]
    archive = await ink.create_bucket("Archived", "archive", root["id"])
    assert ids(await ink.list_buckets(root["id"])) == [book.id, archive.id]

    moved = await ink.move_blob(blob["id"], book.id, archive.id)
    assert moved.bucket_ids == [archive.id] and moved.version == 2
    assert ids(await ink.list_blobs(bucket_id=archive.id)) == [blob["id"]]
    assert ids(await ink.list_blobs(bucket_id=book.id)) == []


async def test_blob_update_delete_and_bucket_rename_and_move(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("state")
    schema_id = await register_book_schema(ink)
    a = await ink.create_bucket("A", "folder")
    b = await ink.create_bucket("B", "folder")
    blob = await ink.create_blob({"title": "one"}, schema_id=schema_id, bucket_ids=[a.id])

    updated = await ink.update_blob(blob.id, {"title": "two"}, if_match=1)
    assert updated.data == {"title": "two"} and updated.version == 2
    with fails(ValidationFailedError) as invalid:
        await ink.update_blob(blob.id, {"title": 3})
    assert invalid.value.errors == [{"path": "/title", "message": "/title must be string"}]

    # PATCH: a rename keeps the parent; parent_id moves; parent_id null moves to the root.
    renamed = await ink.update_bucket(b.id, name="B2")
    assert renamed.name == "B2" and renamed.parent_id is None and renamed.version == 2
    under = await ink.update_bucket(b.id, parent_id=a.id)
    assert under.parent_id == a.id and under.name == "B2"
    kept = await ink.update_bucket(b.id, name="B3")
    assert kept.parent_id == a.id
    assert (await ink.get_bucket(b.id)).model_dump() == unchanged(kept)
    back = await ink.update_bucket(b.id, parent_id=None)
    assert back.parent_id is None
    assert ids(await ink.list_buckets()) == [a.id, b.id]

    deleted = await ink.delete_blob(blob.id)
    assert deleted.deleted is True and deleted.version == 3
    with fails(NotFoundError):
        await ink.get_blob(blob.id)
    with fails(NotFoundError):
        await ink.delete_blob(blob.id)
    gone = await ink.delete_bucket(a.id)
    assert gone.deleted is True
    with fails(NotFoundError):
        await ink.get_bucket(a.id)
    # On the wire: a problem+json answer.
    problem(await call(http, "GET", f"/v1/buckets/{a.id}", ink), 404, "not_found", "not found")


async def test_a_blob_that_fails_validation_changes_nothing(system: RunningSystem, sign_up: SignUp) -> None:
    ink = await sign_up("state")
    schema_id = await register_book_schema(ink)
    bucket = await ink.create_bucket("Drafts", "folder")
    await ink.create_blob({"title": "kept"}, schema_id=schema_id, bucket_ids=[bucket.id])
    before = await ink.list_blobs(bucket_id=bucket.id)
    last = await system.services.store.last_position()

    with fails(ValidationFailedError) as caught:
        await ink.create_blob({"chapters": [{"title": 1}]}, schema_id=schema_id, bucket_ids=[bucket.id])
    assert caught.value.errors == [
        {"path": "", "message": "title is required"},
        {"path": "/chapters/0/title", "message": "/chapters/0/title must be string"},
    ]
    for bad in ({"data": {}, "schema_id": f"nope-{uuid.uuid4().hex[:8]}"},
                {"data": {}, "bucket_ids": [str(uuid.uuid4())]},
                {"data": {"title": "x"}, "schema_id": schema_id, "bucket_ids": [bucket.id, bucket.id]}):
        with pytest.raises((NotFoundError, ValidationFailedError)):
            await ink.create_blob(**bad)

    assert await system.services.store.last_position() == last
    assert await ink.list_blobs(bucket_id=bucket.id) == before


async def test_unstorable_text_is_refused_and_the_read_model_keeps_up(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    """NUL cannot be stored in PostgreSQL text or jsonb: accepting it would halt the projection."""
    ink = await sign_up("state")
    attempts = (
        lambda: ink.create_blob({"t": "a\x00b"}),
        lambda: ink.create_blob({"a\x00": 1}),
        lambda: ink.create_bucket("a\x00b", "x"),
        lambda: ink.create_bucket("ab", "\x00"),
        lambda: ink.register_schema(f"s{uuid.uuid4().hex[:8]}", "1.0.0", {"description": "\x00"}),
        lambda: InkstreamClient(system.base_url, session=http).register(
            f"{uuid.uuid4().hex}@example.com", "long enough", "a\x00"),
    )
    for attempt in attempts:
        with fails(ValidationFailedError):
            await attempt()
    blob = await ink.create_blob({"t": "fine"})
    assert (await ink.get_blob(blob.id)).data == {"t": "fine"}
    assert (await ink.me()).user_id == ink.user_id


async def test_a_move_under_a_descendant_is_422_and_a_non_empty_delete_is_409(sign_up: SignUp) -> None:
    ink = await sign_up("state")
    top = await ink.create_bucket("top", "folder")
    mid = await ink.create_bucket("mid", "folder", parent_id=top.id)
    leaf = await ink.create_bucket("leaf", "folder", parent_id=mid.id)

    for parent in (leaf.id, mid.id, top.id):
        with fails(ValidationFailedError) as caught:
            await ink.update_bucket(top.id, parent_id=parent)
        assert [e["path"] for e in caught.value.errors] == ["/parent_id"]
    assert (await ink.get_bucket(top.id)).version == 1

    with fails(ConflictError):
        await ink.delete_bucket(mid.id)
    blob = await ink.create_blob({"x": 1}, bucket_ids=[leaf.id])
    with fails(ConflictError):
        await ink.delete_bucket(leaf.id)
    await ink.delete_blob(blob.id)
    await ink.delete_bucket(leaf.id)
    await ink.delete_bucket(mid.id)
    await ink.delete_bucket(top.id)


async def test_someone_elses_bucket_and_blob_are_403(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    owner = await sign_up("owner")
    other = await sign_up("other")
    bucket = await owner.create_bucket("private", "folder")
    blob = await owner.create_blob({"secret": True}, bucket_ids=[bucket.id])
    mine = await other.create_bucket("mine", "folder")
    other.observe_position(owner.last_position)  # its reads see the owner's writes

    bid = bucket.id
    for attempt in (
        lambda: other.get_bucket(bid),
        lambda: other.update_bucket(bid, name="taken"),
        lambda: other.delete_bucket(bid),
        lambda: other.list_buckets(bid),
        lambda: other.list_blobs(bucket_id=bid),
        lambda: other.create_bucket("child", "x", parent_id=bid),
        lambda: other.create_blob({}, bucket_ids=[bid]),
        lambda: other.update_bucket(mine.id, parent_id=bid),
        lambda: other.get_blob(blob.id),
        lambda: other.get_blob(blob.id, as_of=blob.position),
        lambda: other.blob_history(blob.id),
        lambda: other.update_blob(blob.id, {}),
        lambda: other.move_blob(blob.id, bid, mine.id),
        lambda: other.delete_blob(blob.id),
    ):
        with fails(ForbiddenError):
            await attempt()
    # A body user_id that is not the token's subject is refused too (the SDK never sends one).
    answer = await call(http, "POST", "/v1/buckets", other, json={"name": "x", "type": "x", "user_id": owner.user_id})
    problem(answer, 403, "forbidden", "forbidden")
    # The owner's moving a blob into someone else's bucket is refused.
    with fails(ForbiddenError):
        await owner.move_blob(blob.id, bid, mine.id)
    assert (await owner.get_blob(blob.id)).version == 1
    assert (await owner.get_bucket(bid)).name == "private"


async def test_unknown_ids_are_404(sign_up: SignUp) -> None:
    ink = await sign_up("state")
    unknown = str(uuid.uuid4())
    for attempt in (lambda: ink.get_bucket(unknown), lambda: ink.get_bucket("not-an-id"),
                    lambda: ink.get_blob(unknown), lambda: ink.get_blob("not-an-id"),
                    lambda: ink.blob_history(unknown),
                    lambda: ink.update_blob(unknown, 1),
                    lambda: ink.update_bucket(unknown, name="x"),
                    lambda: ink.create_bucket("x", "y", parent_id=unknown)):
        with fails(NotFoundError):
            await attempt()


async def test_a_stale_if_match_is_412(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("state")
    blob = await ink.create_blob({"n": 1})
    first = await call(http, "PUT", f"/v1/blobs/{blob.id}", ink, json={"data": {"n": 2}}, headers={"If-Match": '"1"'})
    assert first.status == 200 and first.headers["ETag"] == '"2"'
    ink.observe_position(first.body["position"])
    with fails(PreconditionFailedError):
        await ink.update_blob(blob.id, {"n": 3}, if_match=1)
    assert (await ink.get_blob(blob.id)).data == {"n": 2}
    with fails(PreconditionFailedError):
        await ink.delete_blob(blob.id, if_match=1)
    # On the wire: If-Match is an ETag, and the answer a problem+json.
    stale = await call(http, "DELETE", f"/v1/blobs/{blob.id}", ink, headers={"If-Match": '"1"'})
    problem(stale, 412, "precondition_failed", "precondition failed")
    # Only our own tags match: "1_0" is not version 10, and a list is not judged by its first entry alone.
    blob10 = await ink.create_blob({"n": 0})
    for n in range(1, 10):
        await ink.update_blob(blob10.id, {"n": n})
    for tag in ('"v10"', '"1_0"', '" 10"', '"+10"', '"1٠"', '"10", "3"', "10"):
        odd = await call(http, "PUT", f"/v1/blobs/{blob10.id}", ink, json={"data": {"n": "odd"}}, headers={"If-Match": tag})
        problem(odd, 412, "precondition_failed", "precondition failed")
    # the same list as two header fields
    twice = await http.put(f"/v1/blobs/{blob10.id}", json={"data": {"n": "odd"}},
                           headers=[("Authorization", f"Bearer {ink.token}"), ("If-Match", '"10"'), ("If-Match", '"3"')])
    assert twice.status == 412, await twice.text()
    assert (await ink.get_blob(blob10.id)).data == {"n": 9}
    listed = await call(http, "PUT", f"/v1/blobs/{blob10.id}", ink, json={"data": {"n": 10}},
                        headers={"If-Match": '"10", W/"10"'})
    assert listed.status == 200 and listed.headers["ETag"] == '"11"'

    bucket = await ink.create_bucket("b", "folder")
    await ink.update_bucket(bucket.id, name="c", if_match=1)
    with fails(PreconditionFailedError):
        await ink.update_bucket(bucket.id, name="d", if_match=1)
    await ink.delete_bucket(bucket.id, if_match=2)


async def test_history_and_as_of_time_travel(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("state")
    a = await ink.create_bucket("A", "folder")
    b = await ink.create_bucket("B", "folder")
    created = await ink.create_blob({"draft": 1}, bucket_ids=[a.id])
    bid = created.id
    updated = await ink.update_blob(bid, {"draft": 2})
    moved = await ink.move_blob(bid, a.id, b.id)
    deleted = await ink.delete_blob(bid)

    items = (await ink.blob_history(bid)).items
    assert [i.type for i in items] == ["Blob.Created", "Blob.Updated", "Blob.Moved", "Blob.Deleted"]
    assert [i.position for i in items] == [created.position, updated.position, moved.position, deleted.position]
    assert [i.version for i in items] == [1, 2, 3, 4]
    assert all(i.actor == ink.user_id and i.at.utcoffset() == timedelta(0) for i in items)
    assert items[0].data["data"] == {"draft": 1} and items[1].data == {"data": {"draft": 2}}
    assert items[2].data["to_bucket_id"] == b.id

    then = await ink.get_blob(bid, as_of=created.position)
    assert then.model_dump() == unchanged(created)
    # On the wire: the blob as it was carries that version's ETag.
    raw = await call(http, "GET", f"/v1/blobs/{bid}", ink, params={"as_of": created.position})
    assert raw.status == 200 and raw.body == then.model_dump(mode="json") and raw.headers["ETag"] == '"1"'
    # Any position between two changes shows the earlier one.
    assert (await ink.get_blob(bid, as_of=moved.position - 1)).model_dump() == unchanged(updated)
    assert (await ink.get_blob(bid, as_of=moved.position)).model_dump() == unchanged(moved)
    with fails(NotFoundError):
        await ink.get_blob(bid, as_of=created.position - 1)
    with fails(NotFoundError):
        await ink.get_blob(bid, as_of=deleted.position)
    with fails(BadRequestError):
        await ink.get_blob(bid, as_of=0)


async def test_cursor_paging_visits_every_item_once_in_order(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("state")
    bucket = await ink.create_bucket("pages", "folder")
    made = [(await ink.create_blob({"i": i}, bucket_ids=[bucket.id])).id for i in range(23)]
    for params in ({"bucket_id": bucket.id}, {}):
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await ink.list_blobs(**params, limit=5, cursor=cursor)
            assert len(page.items) <= 5
            seen += ids(page)
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == made and pages == 5
        assert [b.id async for b in ink.iter_pages(ink.list_blobs, **params, limit=5)] == made
    for i in range(7):
        await ink.create_bucket(f"child {i}", "folder", parent_id=bucket.id)
    first = await ink.list_buckets(bucket.id, limit=4)
    rest = await ink.list_buckets(bucket.id, cursor=first.next_cursor)
    assert [b.name for b in first.items + rest.items] == [f"child {i}" for i in range(7)]

    for query in ({"limit": 501}, {"limit": 0}, {"cursor": "garbage!"}):
        with fails(BadRequestError):
            await ink.list_blobs(**query)
    # Forged cursors, on the wire: a bad request, never a server error.
    for forged, path, extra in ((["2026-01-01T00:00:00+00:00", "a\x00"], "/v1/blobs", {}),
                                (["not a time", "x"], "/v1/buckets", {}),
                                ([2**70, 0, 0, "~"], "/v1/schemas", {"name": "book"}),
                                ([1, 2, 3, "a\x00"], "/v1/schemas", {"name": "book"})):
        cursor = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        answer = await call(http, "GET", path, ink, params={"cursor": cursor, **extra})
        problem(answer, 400, "bad_request", "bad request")
    assert len((await ink.list_blobs(limit=500)).items) == 23


async def test_every_query_sees_the_blob_created_just_before(sign_up: SignUp) -> None:
    """Read-your-writes both ways: the SDK's min_position, and consistency=strong (the log's head)."""
    ink = await sign_up("ryw")
    bucket = await ink.create_bucket("read-your-writes", "folder")
    created: list[str] = []
    for i in range(200):
        blob = await ink.create_blob({"i": i}, bucket_ids=[bucket.id])
        created.append(blob.id)
        page = await ink.list_blobs(bucket_id=bucket.id, limit=500, consistency="strong" if i % 2 else None)
        assert ids(page)[-1] == blob.id and len(page.items) == i + 1, i
    assert ids(page) == created


async def test_idempotency_key_creates_one_blob(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("state")
    bucket = await ink.create_bucket("idem", "folder")
    key = uuid.uuid4().hex
    first = await ink.create_blob({"once": True}, bucket_ids=[bucket.id], idempotency_key=key)
    again = await ink.create_blob({"once": True}, bucket_ids=[bucket.id], idempotency_key=key)
    assert again == first
    assert ids(await ink.list_blobs(bucket_id=bucket.id)) == [first.id]
    # A retry after someone else changed the blob still gets the first attempt's answer, not today's blob.
    await ink.update_blob(first.id, {"once": False})
    assert await ink.create_blob({"once": True}, bucket_ids=[bucket.id], idempotency_key=key) == first

    # Retries of changes whose decision would now fail on the state they produced.
    other = await ink.create_bucket("other", "folder")
    key = uuid.uuid4().hex
    moved = await ink.move_blob(first.id, bucket.id, other.id, idempotency_key=key)
    assert await ink.move_blob(first.id, bucket.id, other.id, idempotency_key=key) == moved
    # The SDK sends Idempotency-Key on POST only; the server honours it on DELETE too.
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    deleted = await call(http, "DELETE", f"/v1/blobs/{first.id}", ink, headers=headers)
    assert deleted.status == 200, deleted.body
    again_deleted = await call(http, "DELETE", f"/v1/blobs/{first.id}", ink, headers=headers)
    assert (again_deleted.status, again_deleted.body) == (deleted.status, deleted.body)
    ink.observe_position(deleted.body["position"])
    history = await ink.blob_history(first.id)
    assert [i.type for i in history.items] == ["Blob.Created", "Blob.Updated", "Blob.Moved", "Blob.Deleted"]


async def test_malformed_bodies_are_400(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("state")
    for path, body in (("/v1/blobs", {"data": 1, "extra": 2}), ("/v1/blobs", {"data": 1, "bucket_ids": "x"}),
                       ("/v1/buckets", {"name": 5, "type": "x"}), ("/v1/buckets", {"name": "x"}),
                       ("/v1/schemas", {"name": "x", "version": "1.0.0", "schema": []})):
        problem(await call(http, "POST", path, ink, json=body), 400, "bad_request", "bad request")


async def test_any_json_value_is_blob_data_and_comes_back_unchanged(sign_up: SignUp) -> None:
    ink = await sign_up("state")
    bucket = await ink.create_bucket("values", "folder")
    values: list[Any] = ["", "123", '{"a": 1}', "text", 0, 1.5, True, None, [], [1, "2"], {}, {"nested": {"x": [None]}}]
    for value in values:
        blob = await ink.create_blob(value, bucket_ids=[bucket.id])
        assert blob.data == value
        assert (await ink.get_blob(blob.id)).data == value
    page = await ink.list_blobs(bucket_id=bucket.id)
    assert [item.data for item in page.items] == values
