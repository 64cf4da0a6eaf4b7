"""Seed Task 11, transactional case: a book created with chapters is all or nothing (through the SDK)."""

from __future__ import annotations

from adapters.client import ValidationFailedError
from tests.support.sdk import SignUp, fails
from tests.support.system import RunningSystem


async def test_an_invalid_second_chapter_leaves_no_book_and_no_event(system: RunningSystem, sign_up: SignUp) -> None:
    ink = await sign_up("atomic")
    before = await system.services.store.last_position()
    chapters = [{"title": "Chapter 1", "content": "Content 1"}, {"title": "", "content": "Content 2"}]
    with fails(ValidationFailedError) as caught:
        await ink.create_book("Atomic Book", chapters=chapters)
    assert caught.value.errors == [{"path": "/chapters/1/title", "message": "title is required"}]

    assert (await ink.list_books()).items == []
    assert await system.services.store.last_position() == before


async def test_every_invalid_chapter_is_reported_sorted_by_path(system: RunningSystem, sign_up: SignUp) -> None:
    ink = await sign_up("atomic")
    before = await system.services.store.last_position()
    chapters = [{"title": "ok", "content": ""}, {"content": "no title"}, {"title": "   "}, {"title": "fine", "content": "x"}]
    with fails(ValidationFailedError) as caught:
        await ink.create_book("", chapters=chapters)
    assert caught.value.errors == [
        {"path": "/chapters/1/title", "message": "title is required"},
        {"path": "/chapters/2/content", "message": "content is required"},
        {"path": "/chapters/2/title", "message": "title is required"},
        {"path": "/title", "message": "title is required"},
    ]
    assert (await ink.list_books()).items == []
    assert await system.services.store.last_position() == before


async def test_a_valid_create_with_chapters_is_one_event(system: RunningSystem, sign_up: SignUp) -> None:
    ink = await sign_up("atomic")
    before = await system.services.store.last_position()
    chapters = [{"title": "Chapter 1", "content": "Content 1"}, {"title": "Chapter 2", "content": "Content 2"}]
    book = await ink.create_book("Atomic Book", chapters=chapters)
    assert [(c.order, c.title) for c in book.chapters] == [(1, "Chapter 1"), (2, "Chapter 2")]
    assert book.version == 1
    assert [b.id for b in (await ink.list_books()).items] == [book.id]
    history = await system.services.store.load("book", book.id)
    assert [h.type for h in history] == ["Book.Created"] and history[0].position == book.position
    assert book.position > before
