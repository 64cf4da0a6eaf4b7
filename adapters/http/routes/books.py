"""Books routes: books, their chapters, reorder and export.

Command answers are built from the book the command saved (the read model may
lag behind it), in the shape the matching GET answers from the read model.
Queries, the export included, go through ``read_model`` (read-your-writes).
Only the owner reaches a book: someone else's is 403 on every route, an
unknown (or malformed, or deleted) id is 404.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import structlog
from aiohttp import web

from adapters.export import get_format
from adapters.export.common import one_line
from adapters.http.api import (
    Api,
    actor,
    command_answer,
    context,
    etag,
    if_match,
    page_answer,
    read_body,
    read_query,
    resource_answer,
)
from adapters.http.keys import BUS, LIMITERS, READS, REPOSITORY
from adapters.http.limits import user_key
from adapters.http.models import ReadQuery
from adapters.http.models_books import (
    BookChanged,
    BookDeleted,
    BookIn,
    BookListQuery,
    BookPage,
    BookPatch,
    ChapterAddIn,
    ChapterChanged,
    ChapterPatch,
    ChapterRemoved,
    ExportQuery,
    ReorderIn,
)
from adapters.http.page_turns import BYTE_PAGING, page_turn
from adapters.http.export_memory import held_bytes
from adapters.http.stalls import ClientStalled, write_or_give_up
from commands.authorization import ensure_owner
from commands.books import (
    AddChapter,
    CreateBook,
    DeleteBook,
    EditChapter,
    RemoveChapter,
    ReorderChapters,
    UpdateBook,
)
from commands.repository import Saved
from domain.book import Book
from domain.errors import NotFound
from domain.ids import is_id
from projections.documents import BookOut, ChapterOut
from projections.read_model import ReadModel

BOOKS = "books"


# -- answers from the aggregate ----------------------------------------------------------


def _book_answer(saved: Saved[Book], status: int = 200, **extra: object) -> web.Response:
    book = saved.aggregate
    return command_answer(BookOut.from_aggregate(book), saved.position, status=status, version=book.version, **extra)


def _chapter_answer(saved: Saved[Book], chapter_id: str, status: int = 200) -> web.Response:
    book = saved.aggregate
    chapter = book.chapter(chapter_id)
    doc = ChapterOut(id=chapter.id, title=chapter.title, content=chapter.content, order=book.order_of(chapter_id))
    return command_answer(doc, saved.position, status=status, version=book.version, book_id=book.id_str,
                          book_version=book.version)


log = structlog.get_logger("inkstream.exports")

# -- reads ---------------------------------------------------------------------------------


async def _own_book(request: web.Request, query: ReadQuery) -> BookOut:
    """The acting user's book from the read model: unknown → 404, someone else's → 403."""
    return await _owned_in(request, await _books_read(request, query))


async def _books_read(request: web.Request, query: ReadQuery) -> ReadModel:
    """The read model once the books projection reflects what ``query`` asks for (a wait on the log)."""
    if not is_id(request.match_info["id"]):
        raise NotFound(f"book {request.match_info['id']}")
    return await request.app[READS].read((BOOKS,), query.min_position, query.consistency)


async def _owned_in(request: web.Request, model: ReadModel) -> BookOut:
    book_id = request.match_info["id"]
    book = await model.book(book_id)
    if book is None:
        raise NotFound(f"book {book_id}")
    ensure_owner(actor(request), book.owner_id, "book")
    return book


async def get_book(request: web.Request) -> web.Response:
    book = await _own_book(request, read_query(request, ReadQuery))
    return resource_answer(book, book.version)


async def list_books(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, BookListQuery)
    model = await request.app[READS].read((BOOKS,), query.min_position, query.consistency)
    async with page_turn(request, user):  # metadata of 256 KiB, 10,000 chapter titles: a page is up to 2 MiB
        page = await model.books(user, query.limit, query.cursor)
        return page_answer(page.items, page.next_cursor)


def _disposition(title: str, filename: str) -> str:
    """An ASCII ``filename`` every client understands, plus the real title as RFC 8187 ``filename*``."""
    readable = one_line(title)[:120] or "book"
    extension = filename.rsplit(".", 1)[-1]
    return f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(f'{readable}.{extension}', safe='')}"


EXPORT_BYTES_PER_REQUEST = 256 * 1024
"""What an export costs of its user's request rate: one request for the first this many bytes it sends,
one more for each further this many (an 8 MiB book of prose is 32 requests). Rendering is the CPU a
request spends, up to about a second for a book written to cost the most; counted as one request, two
exports at a time back to back could keep a process's cores busy for one account."""


async def export_book(request: web.Request) -> web.StreamResponse:
    """Streams the file; the book is read and each chunk rendered as steps of the process's export
    limit, and the writes to the client happen outside them (a slow reader holds only its own slot).
    The book is held against the process's export memory (``ExportMemory``: 503 past it), and what was
    rendered is charged once it ends (``EXPORT_BYTES_PER_REQUEST``)."""
    query = read_query(request, ExportQuery)
    fmt = get_format(query.format)
    limiters = request.app[LIMITERS]
    exports = limiters.exports
    rendered = 0
    try:
        async with exports.slot(actor(request)):
            model = await _books_read(request, query)  # waiting on the log holds no step of the process's
            async with exports.step():
                book = await _owned_in(request, model)
            held = held_bytes(book.title, book.metadata, [(c.title, c.content) for c in book.chapters])
            with limiters.export_memory.hold(held):
                async with exports.step():
                    document = book.model_dump(mode="json")
                response = web.StreamResponse(
                    status=200,
                    headers={
                        "Content-Type": fmt.content_type,
                        "Content-Disposition": _disposition(book.title, fmt.filename(book.title)),
                        "ETag": etag(book.version),
                        "X-Content-Type-Options": "nosniff",
                        "Cache-Control": "private, no-store",
                    },
                )
                del book
                await response.prepare(request)
                chunks = fmt.render(document)
                while True:
                    async with exports.step():
                        chunk = next(chunks, None)
                    if chunk is None:
                        break
                    rendered += len(chunk)
                    try:
                        await write_or_give_up(request, response, chunk, limiters.export_stall_seconds)
                    except ClientStalled:
                        log.info("export.stalled", book_id=request.match_info["id"])
                        return response  # reset: the book, its memory and the slot are let go
                    # a write that fits the socket's buffer does not wait: give the loop's other work a turn
                    # between chunks, or a fast reader's export would render chapter after chapter at a stretch
                    await asyncio.sleep(0)
                await response.write_eof()
                return response
    finally:
        extra = rendered // EXPORT_BYTES_PER_REQUEST  # the request itself paid for the first ones
        if extra:
            await limiters.user.charge(user_key(actor(request)), extra)


# -- book commands -----------------------------------------------------------------------------


async def create_book(request: web.Request) -> web.Response:
    body = await read_body(request, BookIn)
    chapters = None if body.chapters is None else [ch.model_dump() for ch in body.chapters]
    saved = await request.app[BUS].handle(CreateBook(body.title, body.metadata, chapters), context(request))
    return _book_answer(saved, status=201)


async def update_book(request: web.Request) -> web.Response:
    body = await read_body(request, BookPatch)
    command = UpdateBook(request.match_info["id"], body.title, body.metadata, if_match(request))
    return _book_answer(await request.app[BUS].handle(command, context(request)))


async def delete_book(request: web.Request) -> web.Response:
    command = DeleteBook(request.match_info["id"], if_match(request))
    return _book_answer(await request.app[BUS].handle(command, context(request)), deleted=True)


# -- chapter commands ------------------------------------------------------------------------------


async def add_chapter(request: web.Request) -> web.Response:
    body = await read_body(request, ChapterAddIn)
    command = AddChapter(request.match_info["id"], body.title, body.content, body.order, if_match(request))
    saved = await request.app[BUS].handle(command, context(request))
    chapter_id = saved.aggregate.last_added_chapter_id
    assert chapter_id is not None
    return _chapter_answer(saved, chapter_id, status=201)


async def edit_chapter(request: web.Request) -> web.Response:
    body = await read_body(request, ChapterPatch)
    chapter_id = request.match_info["cid"]
    command = EditChapter(request.match_info["id"], chapter_id, body.title, body.content, if_match(request))
    return _chapter_answer(await request.app[BUS].handle(command, context(request)), chapter_id)


async def remove_chapter(request: web.Request) -> web.Response:
    book_id, chapter_id = request.match_info["id"], request.match_info["cid"]
    command = RemoveChapter(book_id, chapter_id, if_match(request))
    saved = await request.app[BUS].handle(command, context(request))
    book_id_str, version = saved.aggregate.id_str, saved.aggregate.version  # before awaiting: the cached copy moves on
    # The removed chapter as it was: the log just before the removal still holds it.
    before = await request.app[REPOSITORY].get(Book, book_id, until_position=saved.position - 1)
    extra: dict[str, object] = {"id": chapter_id, "book_id": book_id_str, "book_version": version, "deleted": True}
    if before is not None and chapter_id in before.aggregate.chapter_ids:
        old = before.aggregate
        chapter = old.chapter(chapter_id)
        extra.update(title=chapter.title, content=chapter.content, order=old.order_of(chapter_id))
    return command_answer({}, saved.position, version=version, **extra)


async def reorder_chapters(request: web.Request) -> web.Response:
    body = await read_body(request, ReorderIn)
    command = ReorderChapters(request.match_info["id"], body.chapter_ids, if_match(request))
    return _book_answer(await request.app[BUS].handle(command, context(request)))


# -- declarations -------------------------------------------------------------------------------

_OWNER_ONLY = "Only the owner may read or change it (403 for someone else's, 404 when unknown or deleted)."
_IF_MATCH = " `If-Match` with the book's ETag (its version) makes a stale write fail with 412."
_PAGING = " Paged with `limit` (1-500, default 50) and the previous page's `next_cursor`."
_EXPORT_TYPES = ("text/plain", "text/markdown", "text/html", "application/epub+zip")


def register_routes(api: Api) -> None:
    op = api.operation
    op("POST", "/v1/books", summary="Create a book, optionally with its chapters", tag="books", body=BookIn,
       response=BookChanged, status=201, errors=(403, 409, 422),
       description="All or nothing: one `Created` event holds every chapter, so any invalid field fails the "
                   "whole request with 422 (every error listed, e.g. `/chapters/1/title`) and records nothing."
       )(create_book)
    op("GET", "/v1/books", summary="Your books, oldest first", tag="books", query=BookListQuery,
       response=BookPage, errors=(400,),
       description="Items carry their chapters' ids, titles and order, without contents." + _PAGING
                   + BYTE_PAGING)(list_books)
    op("GET", "/v1/books/{id}", summary="A book with its chapters in order", tag="books", query=ReadQuery,
       response=BookOut, errors=(400, 403, 404), description=_OWNER_ONLY)(get_book)
    op("PATCH", "/v1/books/{id}", summary="Retitle a book and/or replace its metadata", tag="books",
       body=BookPatch, response=BookChanged, errors=(403, 404, 409, 412, 422),
       description=_OWNER_ONLY + _IF_MATCH)(update_book)
    op("DELETE", "/v1/books/{id}", summary="Delete a book", tag="books", response=BookDeleted,
       errors=(403, 404, 409, 412), description=_OWNER_ONLY + _IF_MATCH)(delete_book)
    op("POST", "/v1/books/{id}/chapters", summary="Add a chapter (at `order`, or appended)", tag="books",
       body=ChapterAddIn, response=ChapterChanged, status=201, errors=(403, 404, 409, 412, 422),
       description=_OWNER_ONLY + " Answers the new chapter." + _IF_MATCH)(add_chapter)
    op("POST", "/v1/books/{id}/chapters/reorder", summary="Reorder a book's chapters", tag="books",
       body=ReorderIn, response=BookChanged, errors=(403, 404, 409, 412, 422),
       description=_OWNER_ONLY + " `chapter_ids` must be a permutation of the current chapters (else 422)."
       + _IF_MATCH)(reorder_chapters)
    op("PATCH", "/v1/books/{id}/chapters/{cid}", summary="Edit a chapter's title and/or content", tag="books",
       body=ChapterPatch, response=ChapterChanged, errors=(403, 404, 409, 412, 422),
       description=_OWNER_ONLY + _IF_MATCH)(edit_chapter)
    op("DELETE", "/v1/books/{id}/chapters/{cid}", summary="Remove a chapter", tag="books",
       response=ChapterRemoved, errors=(403, 404, 409, 412),
       description=_OWNER_ONLY + " Answers the removed chapter as it was." + _IF_MATCH)(remove_chapter)
    op("GET", "/v1/books/{id}/export", summary="Export a book as a file", tag="books", query=ExportQuery,
       produces=_EXPORT_TYPES, errors=(400, 403, 404, 422, 429),
       description=_OWNER_ONLY + " Streams the file as an attachment: `text` (title, then `Chapter n: <title>`, "
                   "a blank line and the content per chapter), `markdown` (`# <title>`, `## Chapter n: <title>`), "
                   "`html` (a standalone document with a table of contents) or `epub` (EPUB 3). Content is "
                   "escaped, never interpreted. An unknown `format` is a 422. A user runs at most "
                   "`INKSTREAM_EXPORTS_PER_USER` (2) exports at once: one more is a 429 with `Retry-After`.")(export_book)
