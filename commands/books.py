"""Book commands: authorize on the log's copy of the book, let it decide, append.

Only the owner reaches a book (403 otherwise); a malformed id, an unknown book
or a deleted one is 404. ``expected_version`` is the client's ``If-Match``.
"""

from __future__ import annotations

from collections.abc import Callable

from commands.authorization import changeable, ensure_owner
from commands.repository import Context, Repository, Saved
from domain.book import Book
from domain.errors import NotFound
from domain.ids import is_id
from domain.limits import Limits


class BookCommands:
    def __init__(self, repo: Repository, limits: Limits = Limits()) -> None:
        self._repo = repo
        self._limits = limits

    async def create(
        self,
        ctx: Context,
        title: object,
        metadata: object = None,
        chapters: object = None,
    ) -> Saved[Book]:
        """One ``Created`` event with every chapter; any invalid chapter fails the whole command."""
        ensure_owner(ctx.actor, ctx.actor, "book")  # the actor owns what it creates; no actor, no book
        owner = str(ctx.actor)
        return await self._repo.execute(Book, None, lambda _: Book.create(owner, title, metadata, chapters, self._limits), ctx)

    async def update(
        self,
        ctx: Context,
        book_id: str,
        title: object = None,
        metadata: object = None,
        expected_version: int | None = None,
    ) -> Saved[Book]:
        return await self._change(ctx, book_id, expected_version, lambda book: book.update(title, metadata, self._limits))

    async def add_chapter(
        self,
        ctx: Context,
        book_id: str,
        title: object,
        content: object,
        order: object = None,
        expected_version: int | None = None,
    ) -> Saved[Book]:
        """The new chapter is ``saved.aggregate.last_added_chapter_id`` (also after a retried command)."""
        return await self._change(ctx, book_id, expected_version, lambda book: book.add_chapter(title, content, order, self._limits))

    async def edit_chapter(
        self,
        ctx: Context,
        book_id: str,
        chapter_id: str,
        title: object = None,
        content: object = None,
        expected_version: int | None = None,
    ) -> Saved[Book]:
        _check_id(chapter_id, "chapter")
        return await self._change(
            ctx, book_id, expected_version, lambda book: book.edit_chapter(chapter_id, title, content, self._limits)
        )

    async def remove_chapter(
        self,
        ctx: Context,
        book_id: str,
        chapter_id: str,
        expected_version: int | None = None,
    ) -> Saved[Book]:
        _check_id(chapter_id, "chapter")
        return await self._change(ctx, book_id, expected_version, lambda book: book.remove_chapter(chapter_id))

    async def reorder(
        self,
        ctx: Context,
        book_id: str,
        chapter_ids: object,
        expected_version: int | None = None,
    ) -> Saved[Book]:
        return await self._change(ctx, book_id, expected_version, lambda book: book.reorder(chapter_ids))

    async def delete(self, ctx: Context, book_id: str, expected_version: int | None = None) -> Saved[Book]:
        return await self._change(ctx, book_id, expected_version, lambda book: book.delete())

    async def _change(
        self,
        ctx: Context,
        book_id: str,
        expected_version: int | None,
        command: Callable[[Book], object],
    ) -> Saved[Book]:
        _check_id(book_id, "book")

        def decide(book: Book | None) -> Book:
            live = changeable(ctx.actor, "book", book_id, book, expected_version)
            command(live)
            return live

        return await self._repo.execute(Book, book_id, decide, ctx)


def _check_id(value: object, what: str) -> None:
    """An id that is not one of ours cannot exist (and must never reach a subject)."""
    if not is_id(value):
        raise NotFound(f"{what} {value!r}")
