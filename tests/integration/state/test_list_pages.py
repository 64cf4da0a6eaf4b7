"""Lists of blobs, schema versions and processors come in pages bounded in bytes, not only in count.

``GET /v1/blobs?limit=500`` of a user whose blobs are each near the blob size
limit would otherwise be about 256 MB in one answer, read, decoded and
serialised whole by the API process. A page ends early, with a
``next_cursor``, before its items' data would pass ``PAGE_BYTES`` (one item
always fits); walking the cursors still gives every item once, in order. Runs
once per read store (this area's ``conftest.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.client import InkstreamClient
from projections.read_model import PAGE_BYTES
from projections.sizes import json_text_bytes
from tests.support.stores import own_log_system  # noqa: F401 - this module's `system`: a log of its own
from tests.support.sdk import SignUp

BLOBS = 40
TEXT = 100_000  # bytes of each blob's text: 40 of them are about 4 MB, two PAGE_BYTES (2 MiB) and some


async def walk(list_page: Callable[..., Awaitable[Any]], *args: Any, **params: Any) -> list[list[Any]]:
    """The items of each page, following ``next_cursor`` to the end."""
    pages: list[list[Any]] = []
    cursor: str | None = None
    while True:
        page = await list_page(*args, cursor=cursor, **params)
        assert page.items, "every page holds at least one item"
        pages.append(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) <= BLOBS, "the cursor does not move on"


def assert_full_pages(pages: list[list[Any]], weight: Callable[[Any], int]) -> None:
    """Each page within ``PAGE_BYTES`` (or a single item), and as full as it can be: the next page's
    first item would not have fitted."""
    for page, after in zip(pages, [*pages[1:], None]):
        used = sum(weight(item) for item in page)
        assert len(page) == 1 or used <= PAGE_BYTES, (len(page), used)
        if after is not None:
            assert used + weight(after[0]) > PAGE_BYTES, (len(page), used, weight(after[0]))


def blob_weight(blob: Any) -> int:
    return json_text_bytes(blob.data)


async def big_blobs(ink: InkstreamClient, bucket_id: str) -> list[str]:
    ids = []
    for n in range(BLOBS):
        ids.append((await ink.create_blob({"n": n, "text": chr(97 + n % 26) * TEXT}, bucket_ids=[bucket_id])).id)
        if n % 3 == 0:  # small ones between them
            ids.append((await ink.create_blob({"n": n, "small": True}, bucket_ids=[bucket_id])).id)
    return ids


async def test_a_list_of_big_blobs_comes_in_pages_of_at_most_page_bytes_that_hold_every_blob_once(
    sign_up: SignUp,
) -> None:
    ink = await sign_up("big-blobs", retry_rate_limited=True)
    bucket = await ink.create_bucket("big", "folder")
    ids = await big_blobs(ink, bucket.id)

    for bucket_id in (None, bucket.id):
        pages = await walk(ink.list_blobs, bucket_id, limit=500)
        assert [b.id for page in pages for b in page] == ids
        assert len(pages) >= 2, [len(p) for p in pages]
        assert_full_pages(pages, blob_weight)

    # ``limit`` still counts: small pages are cut by count first, and a page that ends at the last blob
    # says so (54 blobs in pages of 6: no cursor to an empty page)
    assert len(ids) % 6 == 0
    pages = await walk(ink.list_blobs, limit=6)
    assert [len(p) for p in pages] == [6] * (len(ids) // 6)
    assert [b.id for page in pages for b in page] == ids


async def test_numbers_in_exponent_form_weigh_what_they_take_written_out(sign_up: SignUp) -> None:
    """``1e308`` is 5 bytes in the log and 309 digits from PostgreSQL's jsonb: a page is weighed by
    the larger, so 8,000 of them (48 KB as compact JSON, about 2.5 MB written out) fill a page alone."""
    ink = await sign_up("exponents", retry_rate_limited=True)
    ids = [(await ink.create_blob([1e308] * 8_000)).id for _ in range(3)]
    pages = await walk(ink.list_blobs, limit=500)
    assert [[b.id for b in page] for page in pages] == [[i] for i in ids]
    assert pages[0][0].data == [1e308] * 8_000


async def test_the_versions_of_a_schema_come_in_pages_of_at_most_page_bytes(sign_up: SignUp) -> None:
    ink = await sign_up("big-schemas", retry_rate_limited=True)
    assert ink.user_id is not None
    name = f"big-{ink.user_id[-12:]}".lower()
    versions = [f"1.{n}.0" for n in range(40)]
    for version in versions:
        await ink.register_schema(name, version, {"type": "object", "description": version[-1] * 110_000})

    def weight(schema: Any) -> int:
        return json_text_bytes(schema.document) + json_text_bytes(schema.migration)

    pages = await walk(ink.list_schema_versions, name, limit=500)
    assert [s.version for page in pages for s in page] == versions[::-1]  # newest first
    assert len(pages) >= 2, [len(p) for p in pages]
    assert_full_pages(pages, weight)


async def test_a_list_of_processors_with_big_configs_comes_in_pages_of_at_most_page_bytes(sign_up: SignUp) -> None:
    """A config may weigh 256 KiB: 500 of them would be a page of 128 MiB."""
    ink = await sign_up("big-processors", retry_rate_limited=True)
    source = "function process(d) { return d; }\n// " + "é" * 99_000  # ~198 KB as JSON: 20 are ~4 MB
    ids = [(await ink.register_processor(f"p{n}", "js-transform", {"source": source})).id for n in range(20)]

    def weight(processor: Any) -> int:
        out = processor.model_dump(mode="json")
        return json_text_bytes(out["config"]) + json_text_bytes(out["triggers"]) + json_text_bytes(out["limits"])

    pages = await walk(lambda cursor, **params: ink.list_processors(cursor=cursor, **params), limit=500)
    assert [p.id for page in pages for p in page] == ids  # oldest first, each once
    assert len(pages) >= 2, [len(p) for p in pages]
    assert_full_pages(pages, weight)
