"""Books read queries, in the API's answer shapes.

Each query is one SQL statement, so it sees one committed state of the read
model even while the projector commits a batch: the book row's ``chapter_ids``
and the chapter rows always agree. Chapter content travels as plain text
columns, not inside a JSON aggregate, so a 3 MB book is not encoded and parsed
as JSON once more on the way out.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from domain.base import utc

MAX_LIMIT = 500

_GET_BOOK = """
SELECT b.id, b.owner_id, b.title, b.metadata, b.version, b.created_at, b.updated_at,
       ch.n, ch.id AS chapter_id, ch.title AS chapter_title, ch.content
FROM books b
LEFT JOIN LATERAL (
    SELECT o.n, c.id, c.title, c.content
    FROM jsonb_array_elements_text(b.chapter_ids) WITH ORDINALITY AS o(cid, n)
    JOIN book_chapters c ON c.id = o.cid
) ch ON true
WHERE b.id = $1
ORDER BY ch.n
"""

_LIST_BOOKS = """
SELECT b.id, b.owner_id, b.title, b.metadata, b.chapter_count, b.version, b.created_at, b.updated_at,
       COALESCE((
           SELECT jsonb_agg(jsonb_build_object('id', c.id, 'title', c.title, 'order', o.n) ORDER BY o.n)
           FROM jsonb_array_elements_text(b.chapter_ids) WITH ORDINALITY AS o(cid, n)
           JOIN book_chapters c ON c.id = o.cid
       ), '[]'::jsonb) AS chapters
FROM books b
WHERE b.owner_id = $1 AND ($2::text IS NULL OR b.id > $2)
ORDER BY b.id
LIMIT $3
"""


def _json(value: Any) -> Any:
    """jsonb as Python values, with or without the pool's JSON codec on the connection."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


async def get_book(conn: asyncpg.Connection, book_id: str) -> dict[str, Any] | None:
    """``{id, title, metadata, chapters: [{id, title, order, content}], owner_id, version, created_at, updated_at}``.

    ``order`` is 1-based. None when there is no such book (or it was deleted).
    """
    rows = await conn.fetch(_GET_BOOK, book_id)
    if not rows:
        return None
    first = rows[0]
    chapters = [
        {"id": r["chapter_id"], "title": r["chapter_title"], "order": n, "content": r["content"]}
        for n, r in enumerate((r for r in rows if r["chapter_id"] is not None), 1)
    ]
    return {
        "id": first["id"],
        "title": first["title"],
        "metadata": _json(first["metadata"]),
        "chapters": chapters,
        "owner_id": first["owner_id"],
        "version": first["version"],
        "created_at": utc(first["created_at"]),
        "updated_at": utc(first["updated_at"]),
    }


async def list_books(
    conn: asyncpg.Connection, owner_id: str, limit: int = 50, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """The owner's books in id order (UUIDv7: creation order, to the millisecond) and the
    cursor of the next page (None at the end).

    Items are the book without chapter contents: ``chapters`` holds ``{id, title, order}``
    and ``chapter_count`` how many there are. The cursor is the last id of the page.
    """
    limit = max(1, min(int(limit), MAX_LIMIT))
    rows = await conn.fetch(_LIST_BOOKS, owner_id, cursor or None, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "id": r["id"],
            "title": r["title"],
            "metadata": _json(r["metadata"]),
            "chapters": _json(r["chapters"]),
            "chapter_count": r["chapter_count"],
            "owner_id": r["owner_id"],
            "version": r["version"],
            "created_at": utc(r["created_at"]),
            "updated_at": utc(r["updated_at"]),
        }
        for r in rows
    ]
    return items, (items[-1]["id"] if more and items else None)
