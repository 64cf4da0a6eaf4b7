"""A body with hundreds of thousands of errors is answered at once, and briefly.

A 1 MiB body of ``[1,1,1,…]`` in a list of ids, of ``""`` ids in a reorder, of
NUL strings in blob data or of unknown keys has up to half a million errors.
Listing them all held the event loop (every user's requests) for 4–6 s and
answered 24–39 MB. An answer now lists at most ``MAX_LISTED_ERRORS`` with a root
note saying so, a check stops looking once it has found more, and a list of
wrong types stops at its first wrong item.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
import orjson

from adapters.client import InkstreamClient
from domain.errors import MAX_LISTED_ERRORS
from tests.support.sdk import SignUp
from tests.support.wire import bearer

T = TypeVar("T")
BODY = 1024 * 1024  # the default INKSTREAM_MAX_BODY_BYTES
BRIEF = 256 * 1024  # an answer listing MAX_LISTED_ERRORS errors fits in this many bytes


def filled(prefix: str, item: str, suffix: str) -> bytes:
    """``prefix`` + as many ``item``s, comma-separated, as fit in a body of the limit + ``suffix``."""
    room = BODY - len(prefix) - len(suffix) - 64
    return (prefix + ",".join([item] * (room // (len(item) + 1))) + suffix).encode()


async def worst_stall(work: Awaitable[T]) -> tuple[T, float]:
    """``work``'s result and the longest the event loop (the server's, in this process) was held meanwhile."""
    worst = 0.0

    async def tick() -> None:
        nonlocal worst
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - began - 0.01)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.02)
    try:
        return await work, worst
    finally:
        ticker.cancel()


async def sent(http: aiohttp.ClientSession, method: str, path: str, user: InkstreamClient,
               raw: bytes) -> tuple[int, bytes]:
    headers = {**bearer(user), "Content-Type": "application/json"}
    async with http.request(method, path, data=raw, headers=headers) as r:
        return r.status, await r.read()


def held_briefly(*stalls: float) -> None:
    """The longest the server's loop was held by any of these requests: well under a second."""
    print("the server was held " + " and ".join(f"{s * 1000:.0f} ms" for s in stalls) + " at most")
    assert max(stalls) < 1.0, f"the server was held {max(stalls):.2f} s"


def brief(status: int, raw: bytes, expected: int) -> dict[str, Any]:
    print(f"\n{status}: an answer of {len(raw):,} bytes")
    assert status == expected, raw[:500]
    assert len(raw) < BRIEF, f"an answer of {len(raw)} bytes"
    body = orjson.loads(raw)
    assert len(body["errors"]) <= MAX_LISTED_ERRORS + 1
    return body


async def test_a_megabyte_of_wrong_ids_is_one_error_and_holds_nobody_up(
    http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    ink = await sign_up("ones")
    book = await ink.create_book("Ones", chapters=[{"title": "One", "content": "1"}])
    ones = filled('{"chapter_ids": [', "1", "]}")
    (status, raw), stall = await worst_stall(sent(http, "POST", f"/v1/books/{book.id}/chapters/reorder", ink, ones))
    body = brief(status, raw, 400)
    assert body["errors"] == [{"path": "/chapter_ids/0", "message": "Input should be a valid string"}]
    ones = filled('{"data": 1, "bucket_ids": [', "1", "]}")
    (status, raw), stall_too = await worst_stall(sent(http, "POST", "/v1/blobs", ink, ones))
    assert brief(status, raw, 400)["errors"] == [{"path": "/bucket_ids/0", "message": "Input should be a valid string"}]
    held_briefly(stall, stall_too)
    assert (await ink.list_blobs()).items == [] and (await ink.get_book(book.id)).version == book.version


async def test_a_megabyte_of_values_the_domain_refuses_lists_a_thousand_and_says_there_are_more(
    http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    ink = await sign_up("nuls")
    book = await ink.create_book("Empty ids", chapters=[{"title": "One", "content": "1"}])
    empties = filled('{"chapter_ids": [', '""', "]}")
    (status, raw), stall = await worst_stall(sent(http, "POST", f"/v1/books/{book.id}/chapters/reorder", ink, empties))
    errors = brief(status, raw, 422)["errors"]
    assert len(errors) == MAX_LISTED_ERRORS + 1
    assert {"path": "", "message": f"more than {MAX_LISTED_ERRORS} errors; only {MAX_LISTED_ERRORS} of them are listed"} \
        in errors
    assert {"path": "/chapter_ids/0", "message": "not a chapter of this book"} in errors
    nuls = filled('{"data": [', '"\\u0000"', "]}")
    (status, raw), stall_too = await worst_stall(sent(http, "POST", "/v1/blobs", ink, nuls))
    errors = brief(status, raw, 422)["errors"]
    assert len(errors) == MAX_LISTED_ERRORS + 1 and errors[0]["message"].startswith("more than 1000 errors")
    assert all(e["message"] == "must not contain NUL characters" for e in errors[1:])
    held_briefly(stall, stall_too)
    assert (await ink.list_blobs()).items == [] and (await ink.get_book(book.id)).version == book.version


async def test_ninety_thousand_unknown_fields_are_counted_not_listed(
    http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    ink = await sign_up("keys")
    keys = b'{"data": 1, ' + b",".join(b'"k%d":1' % i for i in range(90_000)) + b"}"
    (status, raw), stall = await worst_stall(sent(http, "POST", "/v1/blobs", ink, keys))
    body = brief(status, raw, 400)
    assert body["errors"] == [{"path": "", "message": f"90000 errors; too many to list (an answer lists at most "
                                                      f"{MAX_LISTED_ERRORS})"}]
    held_briefly(stall)
    few = b'{"data": 1, "colour": 1, "size": 2}'
    assert orjson.loads((await sent(http, "POST", "/v1/blobs", ink, few))[1])["errors"] == [
        {"path": "/colour", "message": "colour is not allowed"}, {"path": "/size", "message": "size is not allowed"}]
    assert (await ink.list_blobs()).items == []
