"""Issue 9, defect 6: every book, chapter, blob, metadata object and schema has a size limit.

Chapters of 900 KB were all accepted, up to 10,000 of them: about 10 GB in one
book, which the write-side cache and an export hold whole. Each limit below is
refused with 422 and a message that names it (docs/operations.md, "Limits").
The default limits are tried on the session's system; the book's total, which
takes many requests to reach at its default, on ``own_system`` with small limits.
"""

from __future__ import annotations

import uuid

import aiohttp

from adapters.client import ValidationFailedError
from domain.limits import MAX_EVENT_BYTES, Limits
from tests.integration.limits.conftest import SMALL
from tests.support.sdk import SignUp, fails, new_client
from tests.support.system import RunningSystem

DEFAULT = Limits()
KB = 1000


def refusal(caught: object) -> tuple[list[str], str]:
    err = caught.value  # type: ignore[attr-defined]
    return [e["path"] for e in err.errors], " ".join(e["message"] for e in err.errors)


async def test_a_900_kb_chapter_is_refused_naming_the_chapter_limit(sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("Big", chapters=[{"title": "One", "content": "small"}])
    with fails(ValidationFailedError) as caught:
        await ink.add_chapter(book.id, "Huge", "x" * 900 * KB)
    paths, message = refusal(caught)
    assert paths == [""] and f"over the limit of {DEFAULT.chapter_bytes} bytes" in message
    with fails(ValidationFailedError) as caught:
        await ink.update_chapter(book.id, book.chapters[0].id, content="x" * 900 * KB)
    assert f"over the limit of {DEFAULT.chapter_bytes} bytes" in refusal(caught)[1]
    with fails(ValidationFailedError) as caught:
        await ink.create_book("Big", chapters=[{"title": "One", "content": "x" * 900 * KB}])
    assert refusal(caught)[0] == ["/chapters/0"]
    # What counts is the size as stored: 50,000 control characters are 300,000 bytes of JSON escapes.
    with fails(ValidationFailedError):
        await ink.add_chapter(book.id, "Escapes", "\x01" * 50_000)
    assert [c.content for c in (await ink.get_book(book.id)).chapters] == ["small"]
    # just under the limit is fine
    near = "y" * (DEFAULT.chapter_bytes - 100)
    added = await ink.add_chapter(book.id, "Near", near)
    assert added.content == near


async def test_a_book_has_at_most_its_chapter_count(sign_up: SignUp) -> None:
    ink = await sign_up("author")
    many = [{"title": f"C{i}", "content": ""} for i in range(DEFAULT.chapters_per_book + 1)]
    with fails(ValidationFailedError) as caught:
        await ink.create_book("Too many", chapters=many)
    assert f"a book has at most {DEFAULT.chapters_per_book} chapters" in refusal(caught)[1]
    full = await ink.create_book("Full", chapters=many[:-1])
    assert len(full.chapters) == DEFAULT.chapters_per_book
    with fails(ValidationFailedError) as caught:
        await ink.add_chapter(full.id, "One more", "")
    assert f"a book has at most {DEFAULT.chapters_per_book} chapters" in refusal(caught)[1]


async def test_a_book_created_whole_must_fit_in_one_event(sign_up: SignUp) -> None:
    """Four chapters of 250 KB each are allowed one by one, but not as one ``Created`` event over the log's limit."""
    ink = await sign_up("author")
    chapters = [{"title": f"Part {i}", "content": "z" * 250 * KB} for i in range(4)]
    with fails(ValidationFailedError) as caught:
        await ink.create_book("Whole", chapters=chapters)
    paths, message = refusal(caught)
    assert paths == ["/chapters"] and f"at most {MAX_EVENT_BYTES} bytes" in message and "one by one" in message
    book = await ink.create_book("Whole", chapters=chapters[:3])
    await ink.add_chapter(book.id, chapters[3]["title"], chapters[3]["content"])
    assert len((await ink.get_book(book.id)).chapters) == 4


async def test_blob_data_metadata_and_schemas_have_size_limits(sign_up: SignUp) -> None:
    ink = await sign_up("author")
    with fails(ValidationFailedError) as caught:
        await ink.create_blob({"text": "b" * 600 * KB})
    assert refusal(caught)[0] == ["/data"] and f"over the limit of {DEFAULT.blob_bytes} bytes" in refusal(caught)[1]
    blob = await ink.create_blob({"text": "small"})
    with fails(ValidationFailedError):
        await ink.update_blob(blob.id, "b" * 600 * KB)
    with fails(ValidationFailedError) as caught:
        await ink.create_book("Meta", metadata={"notes": "m" * 70 * KB})
    assert refusal(caught)[0] == ["/metadata"]
    assert f"over the limit of {DEFAULT.metadata_bytes} bytes" in refusal(caught)[1]
    book = await ink.create_book("Meta")
    with fails(ValidationFailedError):
        await ink.update_book(book.id, metadata={"notes": "m" * 70 * KB})
    with fails(ValidationFailedError) as caught:
        await ink.register_schema(f"big-{blob.id[-8:]}", "1.0.0", {"description": "s" * 300 * KB})
    assert f"over the limit of {DEFAULT.schema_bytes} bytes" in refusal(caught)[1]
    with fails(ValidationFailedError) as caught:
        await ink.create_blob({}, bucket_ids=[blob.id] * 101)
    assert "at most 100 buckets" in refusal(caught)[1]


async def test_a_book_stops_growing_at_its_size_limit(own_system: RunningSystem, own_http: aiohttp.ClientSession) -> None:
    """On a system whose book limit is 64 KiB and chapter limit 16 KiB (settings ``INKSTREAM_MAX_*``).

    Four chapters of 16,000 characters make a book of about 64,040 bytes, 1,500 under its limit.
    """
    ink = await new_client(own_system.base_url, "grower", session=own_http)
    book_limit = f"over the limit of {SMALL['max_book_bytes']} bytes"
    book = await ink.create_book("Growing")
    for i in range(4):
        await ink.add_chapter(book.id, f"P{i}", "w" * 16_000)
    with fails(ValidationFailedError) as caught:
        await ink.add_chapter(book.id, "P4", "w" * 2_000)
    paths, message = refusal(caught)
    assert paths == [""] and book_limit in message
    with fails(ValidationFailedError) as caught:
        await ink.update_book(book.id, metadata={"notes": "n" * 1_600})
    assert book_limit in refusal(caught)[1]
    await ink.update_book(book.id, metadata={"notes": "n" * 1_300})
    first = (await ink.get_book(book.id)).chapters[0]
    with fails(ValidationFailedError) as caught:  # an edit may not grow it past the limit either
        await ink.update_chapter(book.id, first.id, content="w" * 16_300)
    assert book_limit in refusal(caught)[1]
    with fails(ValidationFailedError) as caught:
        await ink.add_chapter(book.id, "Too long", "v" * 17 * KB)
    assert f"over the limit of {SMALL['max_chapter_bytes']} bytes" in refusal(caught)[1]
    # a smaller chapter makes room again
    await ink.update_chapter(book.id, first.id, content="short")
    await ink.add_chapter(book.id, "P4", "w" * 2_000)
    assert len((await ink.get_book(book.id)).chapters) == 5
    assert len(await ink.export_book(book.id, "text")) > 50 * KB


async def test_a_schema_name_stops_at_its_limit_of_versions(own_system: RunningSystem,
                                                           own_http: aiohttp.ClientSession) -> None:
    """On a system that allows 3 versions of a name: everyone who writes against a schema loads them all,
    so its owner may not make that load as long as they like. A refused version changes nothing."""
    ink = await new_client(own_system.base_url, "versions", session=own_http)
    name = f"capped-{uuid.uuid4().hex[:8]}"
    for minor in range(3):
        await ink.register_schema(name, f"1.{minor}.0", {"type": "object"})
    with fails(ValidationFailedError) as caught:
        await ink.register_schema(name, "1.3.0", {"type": "object"})
    assert f"at most {SMALL['max_schema_versions']} versions" in refusal(caught)[1]
    assert [v.version for v in (await ink.list_schema_versions(name)).items] == ["1.2.0", "1.1.0", "1.0.0"]
    assert (await ink.create_blob({"title": "still typed"}, schema_id=name)).schema_id == f"{name}@1.2.0"
