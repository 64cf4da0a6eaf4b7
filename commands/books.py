"""Book commands: authorize on the log's copy of the book, let it decide, append.

Only the owner reaches a book (Forbidden otherwise); a malformed id, an
unknown book or a deleted one is NotFound. ``expected_version`` is the
client's ``If-Match``. Values arrive as the client sent them (``object``):
the aggregate checks every field and reports every error at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from commands.authorization import changeable, require_actor
from commands.bus import Handler
from commands.repository import Context, Repository, Saved
from domain.book import Book
from domain.errors import NotFound
from domain.ids import is_id
from domain.limits import Limits


@dataclass(frozen=True, slots=True)
class CreateBook:
    title: object
    metadata: object = None
    chapters: object = None


@dataclass(frozen=True, slots=True)
class UpdateBook:
    book_id: str
    title: object = None
    metadata: object = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteBook:
    book_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class AddChapter:
    """The new chapter is ``saved.aggregate.last_added_chapter_id`` (also after a retried command)."""

    book_id: str
    title: object
    content: object
    order: object = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class EditChapter:
    book_id: str
    chapter_id: str
    title: object = None
    content: object = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class RemoveChapter:
    book_id: str
    chapter_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class ReorderChapters:
    book_id: str
    chapter_ids: object
    expected_version: int | None = None


class BookHandlers:
    def __init__(self, repo: Repository, limits: Limits = Limits()) -> None:
        self._repo = repo
        self._limits = limits

    def handlers(self) -> dict[type, Handler]:
        return {
            CreateBook: self.create,
            UpdateBook: lambda c, ctx: self._change(ctx, c, lambda b: b.update(c.title, c.metadata, self._limits)),
            DeleteBook: lambda c, ctx: self._change(ctx, c, lambda b: b.delete()),
            AddChapter: lambda c, ctx: self._change(
                ctx, c, lambda b: b.add_chapter(c.title, c.content, c.order, self._limits)
            ),
            EditChapter: lambda c, ctx: self._change(
                ctx, c, lambda b: b.edit_chapter(_checked(c.chapter_id, "chapter"), c.title, c.content, self._limits)
            ),
            RemoveChapter: lambda c, ctx: self._change(
                ctx, c, lambda b: b.remove_chapter(_checked(c.chapter_id, "chapter"))
            ),
            ReorderChapters: lambda c, ctx: self._change(ctx, c, lambda b: b.reorder(c.chapter_ids)),
        }

    async def create(self, cmd: CreateBook, ctx: Context) -> Saved[Book]:
        """One ``Created`` event with every chapter; any invalid chapter fails the whole command."""
        owner = require_actor(ctx.actor)
        return await self._repo.execute(
            Book, None, lambda _: Book.create(owner, cmd.title, cmd.metadata, cmd.chapters, self._limits), ctx
        )

    async def _change(self, ctx: Context, cmd: UpdateBook | DeleteBook | AddChapter | EditChapter | RemoveChapter
                      | ReorderChapters, change: Callable[[Book], object]) -> Saved[Book]:
        book_id = _checked(cmd.book_id, "book")

        def decide(book: Book | None) -> Book:
            live = changeable(ctx.actor, "book", book_id, book, cmd.expected_version)
            change(live)
            return live

        return await self._repo.execute(Book, book_id, decide, ctx)


def _checked(value: str, what: str) -> str:
    """An id that is not one of ours cannot exist (and must never reach a subject)."""
    if not is_id(value):
        raise NotFound(f"{what} {value!r}")
    return value
