"""A row the API process keeps (``GET /v1/blobs/{id}``, ``/v1/auth/me``) never hides a later write:
each default GET after an answered command shows it, whatever was read before."""

from __future__ import annotations

import asyncio

from tests.support.sdk import SignUp
from tests.support.system import RunningSystem


async def test_every_update_and_move_is_seen_by_the_next_default_get(system: RunningSystem, sign_up: SignUp) -> None:
    ink = await sign_up("kept")
    rows = system.services.reads.model.rows
    assert rows is not None, "the system runs with a row cache"
    hits = rows.hits
    shelf = await ink.create_bucket("shelf", "shelf")
    other = await ink.create_bucket("other", "shelf")
    blob = await ink.create_blob({"edit": 0}, bucket_ids=[shelf.id])
    for edit in range(1, 31):
        assert (await ink.get_blob(blob.id)).data == {"edit": edit - 1}
        assert (await ink.get_blob(blob.id)).data == {"edit": edit - 1}  # read twice: kept
        await ink.update_blob(blob.id, {"edit": edit})
        assert (await ink.get_blob(blob.id)).data == {"edit": edit}
    await ink.move_blob(blob.id, shelf.id, other.id)
    assert (await ink.get_blob(blob.id)).bucket_ids == [other.id]
    await ink.delete_blob(blob.id)
    assert [b.id for b in (await ink.list_blobs()).items] == []
    assert rows.hits >= hits + 30  # the second read of each pair came from the cache


async def test_reads_racing_writes_never_go_back_in_time(system: RunningSystem, sign_up: SignUp) -> None:
    """Readers hammer one blob while it is updated: once an update is answered, no later default
    GET may show an older version (a row read before the commit and kept after it would)."""
    ink = await sign_up("kept")
    blob = await ink.create_blob({"edit": 0})
    answered = 0
    behind: list[str] = []
    done = asyncio.Event()

    async def read() -> None:
        while not done.is_set():
            floor = answered
            seen = (await ink.get_blob(blob.id)).data["edit"]
            if seen < floor:
                behind.append(f"read {seen} after {floor} was answered")

    readers = [asyncio.create_task(read()) for _ in range(8)]
    for edit in range(1, 61):
        await ink.update_blob(blob.id, {"edit": edit})
        answered = edit
    done.set()
    await asyncio.gather(*readers)
    assert behind == []


async def test_a_kept_book_shows_every_change_to_it_and_its_chapters(system: RunningSystem, sign_up: SignUp) -> None:
    """A book is kept with its chapters; an edit, an addition, a reorder, a removal of a chapter
    or of the book each reach the next default GET."""
    ink = await sign_up("kept")
    rows = system.services.reads.model.rows
    assert rows is not None
    book = await ink.create_book("Kept", chapters=[{"title": "One", "content": "first"},
                                                   {"title": "Two", "content": "second"}])

    async def read_twice() -> list[tuple[str, str]]:
        hits = rows.hits
        first = await ink.get_book(book.id)
        again = await ink.get_book(book.id)
        assert again == first and rows.hits > hits  # the second read was kept
        return [(c.title, c.content) for c in again.chapters]

    one, two = (c.id for c in (await ink.get_book(book.id)).chapters)
    assert await read_twice() == [("One", "first"), ("Two", "second")]
    await ink.update_chapter(book.id, one, content="first, edited")
    assert await read_twice() == [("One", "first, edited"), ("Two", "second")]
    await ink.add_chapter(book.id, "Three", "third")
    assert await read_twice() == [("One", "first, edited"), ("Two", "second"), ("Three", "third")]
    three = (await ink.get_book(book.id)).chapters[2].id
    await ink.reorder_chapters(book.id, [three, two, one])
    assert await read_twice() == [("Three", "third"), ("Two", "second"), ("One", "first, edited")]
    await ink.delete_chapter(book.id, two)
    assert await read_twice() == [("Three", "third"), ("One", "first, edited")]
    await ink.update_book(book.id, title="Kept, renamed")
    assert (await ink.get_book(book.id)).title == "Kept, renamed"
    await ink.delete_book(book.id)
    assert [b.id for b in (await ink.list_books()).items] == []
