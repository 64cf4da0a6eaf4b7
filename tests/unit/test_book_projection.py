"""The books projection: pure, deterministic, and the read model always matches the aggregate."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.base import EventCodec
from domain.book import Book
from domain.ids import new_id
from domain.recorded import Recorded
from projections.books import BooksProjection
from projections.changes import Delete, Update, Upsert
from tests.support.memory_tables import MemoryTables

CODEC = EventCodec([Book])
OWNER = new_id()
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def records_of(book: Book, start: int = 1) -> list[Recorded]:
    """The book's pending events as the log would record them (one second apart)."""
    out = []
    events: list[Any] = list(book.collect_events())
    for i, event in enumerate(events):
        new = CODEC.encode(event, actor=OWNER)
        position = start + i
        out.append(
            Recorded(position, "book", book.id_str, new.type, new.version, T0 + timedelta(seconds=position), new.data)
        )
    return out


def project(records: list[Recorded], tables: MemoryTables | None = None) -> MemoryTables:
    tables = tables or MemoryTables()
    projection = BooksProjection()
    for record in records:
        tables.apply(projection.changes(record))
    return tables


def view(tables: MemoryTables, book_id: str) -> dict[str, Any] | None:
    """What ``queries.books.get_book`` selects: the row, and chapters in ``chapter_ids`` order."""
    rows = [r for r in tables.rows("books") if r["id"] == book_id]
    if not rows:
        return None
    row = rows[0]
    chapters = {c["id"]: c for c in tables.rows("book_chapters") if c["book_id"] == book_id}
    return {
        "title": row["title"],
        "metadata": row["metadata"],
        "owner_id": row["owner_id"],
        "version": row["version"],
        "chapter_count": row["chapter_count"],
        "chapters": [
            {"id": cid, "title": chapters[cid]["title"], "order": n, "content": chapters[cid]["content"]}
            for n, cid in enumerate(row["chapter_ids"], 1)
        ],
        "orphans": sorted(set(chapters) - set(row["chapter_ids"])),
    }


def state(book: Book) -> dict[str, Any]:
    return {
        "title": book.title,
        "metadata": book.metadata,
        "owner_id": book.owner_id,
        "version": book.version,
        "chapter_count": len(book.chapters),
        "chapters": [
            {"id": c.id, "title": c.title, "order": n, "content": c.content} for n, c in enumerate(book.chapters, 1)
        ],
        "orphans": [],
    }


def test_created_rows() -> None:
    book = Book.create(OWNER, "T", {"a": 1}, [{"title": "A", "content": "a"}, {"title": "B", "content": "b"}])
    [record] = records_of(book)
    changes = BooksProjection().changes(record)
    assert isinstance(changes[0], Upsert) and changes[0].table == "books"
    row = changes[0].row
    assert row["id"] == book.id_str and row["owner_id"] == OWNER and row["metadata"] == {"a": 1}
    assert row["chapter_ids"] == book.chapter_ids and row["chapter_count"] == 2
    assert (row["created_at"], row["updated_at"], row["version"], row["position"]) == (record.at, record.at, 1, 1)
    assert [c.table for c in changes[1:]] == ["book_chapters", "book_chapters"]
    assert view(project([record]), book.id_str) == state(book)


def test_changes_are_deterministic_and_unknown_events_ignored() -> None:
    book = Book.create(OWNER, "T", chapters=[{"title": "A", "content": "a"}])
    book.add_chapter("B", "b")
    for record in records_of(book):
        assert BooksProjection().changes(record) == BooksProjection().changes(record)
    other = Recorded(9, "blob", new_id(), "Blob.Created", 1, T0, {"x": 1})
    assert BooksProjection().changes(other) == []
    assert BooksProjection.name == "books" and BooksProjection.tables == ("books", "book_chapters")


def test_edit_touches_one_chapter_row_and_the_book_stamp() -> None:
    book = Book.create(OWNER, "T", chapters=[{"title": "A", "content": "a"}, {"title": "B", "content": "b"}])
    records = records_of(book)
    target = book.chapter_ids[1]
    book.edit_chapter(target, content="b2")
    [edited] = records_of(book, start=2)
    changes = BooksProjection().changes(edited)
    assert changes == [
        Update(
            "book_chapters", {"id": target}, {"content": "b2", "updated_at": edited.at, "version": 2, "position": 2}
        ),
        Update("books", {"id": book.id_str}, {"updated_at": edited.at, "version": 2, "position": 2}),
    ]
    assert view(project(records + [edited]), book.id_str) == state(book)


def test_delete_removes_every_row() -> None:
    book = Book.create(OWNER, "T", chapters=[{"title": "A", "content": "a"}])
    book.add_chapter("B", "b")
    book.delete()
    records = records_of(book)
    assert isinstance(BooksProjection().changes(records[-1])[0], Delete)
    tables = project(records)
    assert tables.rows("books") == [] and tables.rows("book_chapters") == []


def test_other_books_are_untouched() -> None:
    mine = Book.create(OWNER, "Mine", chapters=[{"title": "A", "content": "a"}])
    other = Book.create(OWNER, "Other", chapters=[{"title": "X", "content": "x"}])
    records = records_of(mine) + records_of(other, start=2)
    other.delete()
    records += records_of(other, start=3)
    tables = project(records)
    assert view(tables, mine.id_str) == state(mine) and view(tables, other.id_str) is None


text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
titles = text.filter(lambda s: bool(s.strip()))
operation = st.one_of(
    st.tuples(st.just("add"), titles, text, st.integers(0, 30)),
    st.tuples(st.just("append"), titles, text),
    st.tuples(st.just("edit"), st.integers(0, 30), st.none() | titles, text),
    st.tuples(st.just("remove"), st.integers(0, 30)),
    st.tuples(st.just("reorder"), st.randoms(use_true_random=False)),
    st.tuples(st.just("update"), st.none() | titles, st.none() | st.dictionaries(text, text, max_size=3)),
)


def apply(book: Book, op: tuple[Any, ...]) -> None:
    kind, *args = op
    count = len(book.chapters)
    if kind == "add":
        book.add_chapter(args[0], args[1], order=args[2] % (count + 1) + 1)
    elif kind == "append":
        book.add_chapter(args[0], args[1])
    elif kind == "edit" and count:
        book.edit_chapter(book.chapter_ids[args[0] % count], title=args[1], content=args[2])
    elif kind == "remove" and count:
        book.remove_chapter(book.chapter_ids[args[0] % count])
    elif kind == "reorder":
        ids = book.chapter_ids
        args[0].shuffle(ids)
        book.reorder(ids)
    elif kind == "update" and (args[0] is not None or args[1] is not None):
        book.update(title=args[0], metadata=args[1])


def book_after(initial: list[tuple[str, str]], operations: list[tuple[Any, ...]]) -> Book:
    book = Book.create(OWNER, "Start", {}, [{"title": t, "content": c} for t, c in initial])
    for op in operations:
        apply(book, op)
    return book


@settings(max_examples=150, deadline=None)
@given(
    initial=st.lists(st.tuples(titles, text), max_size=5),
    operations=st.lists(operation, max_size=25),
)
def test_read_model_matches_the_aggregate_after_any_history(
    initial: list[tuple[str, str]], operations: list[tuple[Any, ...]]
) -> None:
    book = book_after(initial, operations)
    records = records_of(book)
    tables = project(records)
    assert view(tables, book.id_str) == state(book)
    last = records[-1]
    row = tables.rows("books")[0]
    assert (row["version"], row["position"], row["updated_at"], row["created_at"]) == (
        book.version,
        last.position,
        last.at,
        records[0].at,
    )
    # Each event's changes are idempotent: applying a batch twice changes nothing more.
    twice = MemoryTables()
    for record in records:
        changes = BooksProjection().changes(record)
        twice.apply(changes)
        twice.apply(changes)
    assert twice.tables == tables.tables
    # And the log alone rebuilds the same aggregate.
    again = CODEC.rebuild(records)
    assert isinstance(again, Book) and state(again) == state(book)


@settings(max_examples=100, deadline=None)
@given(
    initial=st.lists(st.tuples(titles, text), max_size=5),
    operations=st.lists(operation, max_size=25),
)
def test_every_event_that_changes_a_chapter_row_names_its_books_row_too(
    initial: list[tuple[str, str]], operations: list[tuple[Any, ...]]
) -> None:
    """What the PostgreSQL row cache relies on to keep a book read with its chapters: the
    commit's notice names the book's row whenever any chapter row of it changed."""
    book = book_after(initial, operations)
    for record in records_of(book):
        changes = BooksProjection().changes(record)
        if any(change.table == "book_chapters" for change in changes):
            named = [c for c in changes if c.table == "books"
                     and (c.key == ("id",) and c.row["id"] == book.id_str if isinstance(c, Upsert)
                          else c.where == {"id": book.id_str})]
            assert named, (record.type, changes)
