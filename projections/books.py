"""Books read model: one ``books`` row per book and one ``book_chapters`` row per chapter.

Chapters get rows of their own rather than a jsonb list in the book row because a
projection maps one event to row changes without reading the read model: editing
one chapter of a jsonb list would need the list. The order lives in the book row
as ``chapter_ids`` (the events that change it carry the whole new order), so a
reorder is one update and a chapter's ``order`` is its 1-based place in that list.

Every event that changes a chapter row also changes its book's row, in the same
batch: a process that keeps books read with their chapters (the PostgreSQL row
cache) relies on the book's row being named whenever any of it changed.

Pages of books (``PAGE_BYTES``) are weighed from stored parts, since no row is
read: a book's ``metadata_bytes`` (metadata may be 256 KiB), each chapter's
``summary_bytes`` (its id, title and order, as a page lists it; a book may have
10,000 chapters of 500-character titles), and ``BOOK_ROW_BYTES`` for the rest of
a book (its title and scalars, all bounded). A book weighs their sum.
"""

from __future__ import annotations

from typing import Any, ClassVar

from domain.limits import CEILINGS
from domain.recorded import Recorded
from projections.changes import Change, Delete, Update, Upsert, touched
from projections.sizes import json_text_bytes

BOOKS = "books"
CHAPTERS = "book_chapters"

BOOK_ROW_BYTES = 4 * 1024
"""An upper bound of a book's summary as JSON text without its metadata and chapters: a title of at most
``MAX_TITLE`` (500) characters, ids, counts and times (checked by tests/unit/test_page_weights.py). 500
of them (``MAX_LIMIT``) stay within ``PAGE_BYTES``: a page of plain books is cut by ``limit``."""

_LAST_ORDER = CEILINGS["chapters_per_book"]


def summary_bytes(chapter_id: str, title: str) -> int:
    """A chapter's weight in a page of books: ``{id, title, order}`` at its longest order, and a comma."""
    return json_text_bytes({"id": chapter_id, "title": title, "order": _LAST_ORDER}) + 1


class BooksProjection:
    name: ClassVar[str] = "books"
    tables: ClassVar[tuple[str, ...]] = (BOOKS, CHAPTERS)

    def changes(self, record: Recorded) -> list[Change]:
        handler = _HANDLERS.get(record.type)
        return handler(record) if handler else []



def _book(record: Recorded, **fields: Any) -> Update:
    return Update(BOOKS, {"id": record.aggregate_id}, {**fields, **touched(record)})


def _chapter_row(record: Recorded, chapter: dict[str, Any]) -> Upsert:
    return Upsert(
        CHAPTERS,
        ("id",),
        {
            "id": chapter["id"],
            "book_id": record.aggregate_id,
            "title": chapter["title"],
            "summary_bytes": summary_bytes(chapter["id"], chapter["title"]),
            "content": chapter["content"],
            "created_at": record.at,
            **touched(record),
        },
    )


def _created(record: Recorded) -> list[Change]:
    d = record.data
    chapters = d.get("chapters") or []
    book = Upsert(
        BOOKS,
        ("id",),
        {
            "id": record.aggregate_id,
            "owner_id": d["owner_id"],
            "title": d["title"],
            "metadata": d.get("metadata") or {},
            "metadata_bytes": json_text_bytes(d.get("metadata") or {}),
            "chapter_ids": [c["id"] for c in chapters],
            "chapter_count": len(chapters),
            "created_at": record.at,
            **touched(record),
        },
    )
    return [book, *(_chapter_row(record, c) for c in chapters)]


def _updated(record: Recorded) -> list[Change]:
    d = record.data
    fields = {k: d[k] for k in ("title", "metadata") if d.get(k) is not None}
    if "metadata" in fields:
        fields["metadata_bytes"] = json_text_bytes(fields["metadata"])
    return [_book(record, **fields)]


def _chapter_added(record: Recorded) -> list[Change]:
    ids = record.data["chapter_ids"]
    return [_chapter_row(record, record.data["chapter"]), _book(record, chapter_ids=ids, chapter_count=len(ids))]


def _chapter_edited(record: Recorded) -> list[Change]:
    d = record.data
    fields = {k: d[k] for k in ("title", "content") if d.get(k) is not None}
    if "title" in fields:
        fields["summary_bytes"] = summary_bytes(d["chapter_id"], fields["title"])
    return [Update(CHAPTERS, {"id": d["chapter_id"]}, {**fields, **touched(record)}), _book(record)]


def _chapter_removed(record: Recorded) -> list[Change]:
    ids = record.data["chapter_ids"]
    return [Delete(CHAPTERS, {"id": record.data["chapter_id"]}), _book(record, chapter_ids=ids, chapter_count=len(ids))]


def _reordered(record: Recorded) -> list[Change]:
    ids = record.data["chapter_ids"]
    return [_book(record, chapter_ids=ids, chapter_count=len(ids))]


def _deleted(record: Recorded) -> list[Change]:
    return [Delete(CHAPTERS, {"book_id": record.aggregate_id}), Delete(BOOKS, {"id": record.aggregate_id})]


_HANDLERS = {
    "Book.Created": _created,
    "Book.Updated": _updated,
    "Book.ChapterAdded": _chapter_added,
    "Book.ChapterEdited": _chapter_edited,
    "Book.ChapterRemoved": _chapter_removed,
    "Book.ChaptersReordered": _reordered,
    "Book.Deleted": _deleted,
}
