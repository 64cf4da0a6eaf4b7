"""Issue 9, defect 8: odd input is a 400 or 422 with a clear message, never a 500.

Blob data nested 300 or 900 deep crashed the JSON encoder, book metadata
nested 600 deep raised ``RecursionError`` (3,000 log lines a request), and
list cursors with extreme dates overflowed in the database driver. Every JSON
body now nests at most 64 levels (``MAX_JSON_DEPTH``), checked as it is read,
and a cursor is either one the list handed out or a 400.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import orjson
import pytest

from adapters.client import InkstreamClient
from domain.ids import new_id
from domain.limits import MAX_JSON_DEPTH
from tests.support.sdk import SignUp
from tests.support.wire import Answer, bearer, call, problem

DEPTH_MESSAGE = f"bad request: JSON nested deeper than {MAX_JSON_DEPTH} levels"


def nested(depth: int) -> str:
    """A JSON array nested ``depth`` levels deep."""
    return "[" * depth + "1" + "]" * depth


async def send(http: aiohttp.ClientSession, method: str, path: str, user: InkstreamClient, raw: str) -> Answer:
    """A body sent as raw text, so that no client-side encoder meets the nesting first."""
    headers = {**bearer(user), "Content-Type": "application/json"}
    async with http.request(method, path, data=raw.encode(), headers=headers) as r:
        return Answer(r.status, await r.json(content_type=None), r.headers)


def cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


@pytest.mark.parametrize("depth", [300, 900])
async def test_deeply_nested_blob_data_is_a_400(http: aiohttp.ClientSession, sign_up: SignUp, depth: int) -> None:
    ink = await sign_up("nester")
    answer = await send(http, "POST", "/v1/blobs", ink, '{"data": ' + nested(depth) + "}")
    body = problem(answer, 400, "bad_request", DEPTH_MESSAGE)
    assert "correlation_id" not in body
    assert (await ink.list_blobs()).items == []


async def test_deeply_nested_book_metadata_is_a_400(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("nester")
    answer = await send(http, "POST", "/v1/books", ink, '{"title": "Deep", "metadata": {"a": ' + nested(600) + "}}")
    problem(answer, 400, "bad_request", DEPTH_MESSAGE)
    book = await ink.create_book("Shallow")
    answer = await send(http, "PATCH", f"/v1/books/{book.id}", ink, '{"metadata": {"a": ' + nested(600) + "}}")
    problem(answer, 400, "bad_request", DEPTH_MESSAGE)
    assert (await ink.get_book(book.id)).metadata == {}


async def test_a_body_may_nest_exactly_64_levels(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("nester")
    at_limit = await send(http, "POST", "/v1/blobs", ink, '{"data": ' + nested(MAX_JSON_DEPTH - 1) + "}")
    assert at_limit.status == 201, at_limit.body
    stored = await call(http, "GET", f"/v1/blobs/{at_limit.body['id']}", ink)  # waits for the log's last position
    assert stored.status == 200 and stored.body["data"] == orjson.loads(nested(MAX_JSON_DEPTH - 1))
    one_more = await send(http, "POST", "/v1/blobs", ink, '{"data": ' + nested(MAX_JSON_DEPTH) + "}")
    problem(one_more, 400, "bad_request", DEPTH_MESSAGE)
    # brackets inside strings are text, not nesting
    text = await send(http, "POST", "/v1/blobs", ink, orjson.dumps({"data": "[" * 500 + "{" * 500}).decode())
    assert text.status == 201, text.body


async def test_every_route_with_a_body_checks_its_depth(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("nester")
    schema = await ink.register_schema(f"deep-{new_id()[-12:]}", "1.0.0", {})
    deep = nested(100)
    for method, path, raw in [
        ("POST", "/v1/schemas", '{"name": "deep-x", "version": "1.0.0", "schema": {"a": ' + deep + "}}"),
        ("POST", f"/v1/schemas/{schema.id}/validate", '{"data": ' + deep + "}"),
        ("POST", "/v1/buckets", '{"name": "b", "type": "t", "extra": ' + deep + "}"),
        ("POST", "/v1/auth/login", '{"email": ' + deep + "}"),
    ]:
        problem(await send(http, method, path, ink, raw), 400, "bad_request", DEPTH_MESSAGE)


@pytest.mark.parametrize("at", [
    "0001-01-01T00:00:00+14:00",    # before year 1 in UTC
    "9999-12-31T23:59:59-14:00",    # after year 9999 in UTC
    "2024-01-01T00:00:00",          # no offset: not one the list handed out
    "2024-01-01",
    "not a time",
    17,
])
async def test_a_forged_list_cursor_is_a_400(http: aiohttp.ClientSession, sign_up: SignUp, at: Any) -> None:
    ink = await sign_up("pager")
    for path in ("/v1/buckets", "/v1/blobs"):
        answer = await call(http, "GET", path, ink, params={"cursor": cursor([at, new_id()])})
        problem(answer, 400, "bad_request", "bad request: invalid cursor")


async def test_cursors_that_are_not_the_lists_own_are_a_400(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("pager")
    name = f"pager-{new_id()[-12:]}"
    for path, params in [
        ("/v1/buckets", {"cursor": cursor(["2024-01-01T00:00:00+00:00", ["not", "an", "id"]])}),
        ("/v1/blobs", {"cursor": cursor(["2024-01-01T00:00:00+00:00", "x" * 40])}),
        ("/v1/schemas", {"name": name, "cursor": cursor([True, 0, 0, "~"])}),
        ("/v1/schemas", {"name": name, "cursor": cursor([2**63, 0, 0, "~"])}),
        ("/v1/blobs", {"cursor": "%%%"}),
        ("/v1/books", {"cursor": cursor(["x"])}),
    ]:
        problem(await call(http, "GET", path, ink, params=params), 400, "bad_request", "bad request")
    # a real cursor still pages
    for i in range(3):
        await ink.create_bucket(f"b{i}", "shelf")
    first = await ink.list_buckets(limit=2)
    assert first.next_cursor is not None
    rest = await ink.list_buckets(limit=2, cursor=first.next_cursor)
    assert [b.name for b in first.items + rest.items] == ["b0", "b1", "b2"]


async def test_odd_numbers_and_parameters_never_answer_500(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("odd")
    blob = await ink.create_blob({"n": 1})
    book = await ink.create_book("Odd", chapters=[{"title": "One", "content": ""}])
    raw_bodies = [
        ("POST", "/v1/blobs", '{"data": 1e400}'),
        ("POST", "/v1/blobs", '{"data": -1e400}'),
        ("POST", "/v1/blobs", '{"data": NaN}'),
        ("POST", "/v1/blobs", '{"data": [-0, -0.0, 1e-400, 5e-324, 18446744073709551615, 18446744073709551616]}'),
        ("POST", f"/v1/books/{book.id}/chapters", '{"title": "t", "content": "", "order": 1e400}'),
        ("POST", f"/v1/books/{book.id}/chapters", '{"title": "t", "content": "", "order": -0}'),
        ("POST", f"/v1/books/{book.id}/chapters", '{"title": "t", "content": "", "order": 1.0}'),
        ("POST", "/v1/blobs", '{"data": "\\ud800"}'),
        ("POST", "/v1/blobs", '{"data": {"\\u0000": 1}}'),
        ("PUT", f"/v1/blobs/{blob.id}", '{"data": "' + "\\u0001" * 20_000 + '"}'),
    ]
    for method, path, raw in raw_bodies:
        answer = await send(http, method, path, ink, raw)
        assert answer.status < 500, (method, path, raw[:60], answer.body)
    queries = [
        (f"/v1/blobs/{blob.id}", {"as_of": "-0"}),
        (f"/v1/blobs/{blob.id}", {"as_of": "1e3"}),
        (f"/v1/blobs/{blob.id}", {"as_of": str(2**63 - 1)}),
        (f"/v1/blobs/{blob.id}", {"min_position": "1_000"}),
        ("/v1/blobs", {"limit": "\u0661"}),
        ("/v1/blobs", {"schema_id": "a@99999999999999999999.0.0"}),
        ("/v1/blobs", {"schema_id": "a\x00"}),
        ("/v1/blobs", {"bucket_id": "a\x00"}),
        ("/v1/jobs", {"processor_id": "a\x00"}),
        ("/v1/jobs", {"processor_id": "\ud800"}),
        ("/v1/jobs", {"status": "a\x00"}),
        ("/v1/processors", {"name": "a\x00"}),
        ("/v1/migrations", {"schema_id": "a\x00"}),
        ("/v1/books", {"name": "a\x00"}),
        ("/v1/buckets", {"parent_id": "a\x00"}),
        ("/v1/schemas", {"name": "a\x00"}),
        (f"/v1/books/{book.id}/export", {"format": "text\x00"}),
        ("/v1/schemas/a@99999999999999999999.0.0", {}),
        ("/v1/schemas/" + "a" * 5000, {}),
        (f"/v1/blobs/{blob.id}%00", {}),
    ]
    for path, params in queries:
        answer = await call(http, "GET", path, ink, params=params)
        assert answer.status < 500, (path, params, answer.body)
    answer = await call(http, "PUT", f"/v1/blobs/{blob.id}", ink, json={"data": 1},
                        headers={"If-Match": '"' + "9" * 5000 + '"'})
    problem(answer, 412, "precondition_failed", "precondition failed")
