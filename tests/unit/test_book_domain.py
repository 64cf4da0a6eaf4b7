"""Book aggregate, and its command handlers on the in-memory event store (real bootstrap)."""

from __future__ import annotations

from typing import Any

import pytest

from commands.repository import Context, Repository
from domain.base import EventCodec
from domain.book import Book
from domain.errors import FieldError, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from domain.ids import is_id, new_id
from domain.recorded import Recorded
from tests.support.memory_store import MemoryEventStore
from tests.support.world import World

OWNER = new_id()
OTHER = new_id()


def ctx(actor: str | None = OWNER) -> Context:
    return Context(actor=actor, command_id=new_id())


@pytest.fixture
def store(world: World) -> MemoryEventStore:
    return world.store


@pytest.fixture
def repo(world: World) -> Repository:
    return world.repo


@pytest.fixture
def books(world: World) -> Any:
    return world.books


def paths(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[tuple[str, str]]:
    return [(e.path, e.message) for e in exc.value.errors]


def titles(book: Book) -> list[str]:
    return [c.title for c in book.chapters]


# -- the aggregate ---------------------------------------------------------------


def test_create_with_chapters_is_one_event() -> None:
    book = Book.create(
        OWNER, "My Book", {"author": "Ann"}, [{"title": "One", "content": "1"}, {"title": "Two", "content": ""}]
    )
    events = book.collect_events()
    assert [type(e).__qualname__ for e in events] == ["Book.Created"]
    assert book.version == 1 and book.owner_id == OWNER and book.metadata == {"author": "Ann"}
    assert titles(book) == ["One", "Two"]
    assert all(is_id(c.id) for c in book.chapters)
    assert len({c.id for c in book.chapters}) == 2


def test_create_defaults() -> None:
    book = Book.create(OWNER, "Empty")
    assert book.metadata == {} and book.chapters == [] and not book.deleted


def test_create_reports_every_invalid_chapter_sorted() -> None:
    chapters = [
        {"title": "fine", "content": "ok"},
        {"content": "no title"},
        {"title": "   ", "content": "blank title"},
        {"title": "no content"},
        "not an object",
        {"title": 5, "content": 7},
    ]
    with pytest.raises(ValidationFailed) as exc:
        Book.create(OWNER, "", {"x": 1}, chapters)
    assert paths(exc) == [
        ("/chapters/1/title", "title is required"),
        ("/chapters/2/title", "title is required"),
        ("/chapters/3/content", "content is required"),
        ("/chapters/4", "chapter must be an object"),
        ("/chapters/5/content", "content must be a string"),
        ("/chapters/5/title", "title must be a string"),
        ("/title", "title is required"),
    ]


@pytest.mark.parametrize(
    ("metadata", "chapters", "expected"),
    [
        ([], None, [("/metadata", "metadata must be an object")]),
        (None, {"title": "x"}, [("/chapters", "chapters must be an array")]),
        ({"a": "nul\x00"}, None, [("/metadata/a", "must not contain NUL characters")]),
        (
            None,
            [{"title": "t", "content": "a\x00b"}],
            [("/chapters/0/content", "content must not contain NUL characters")],
        ),
        (
            None,
            [{"title": "\ud800", "content": ""}],
            [("/chapters/0/title", "title must be valid Unicode (no lone surrogates)")],
        ),
    ],
)
def test_create_refuses_what_cannot_be_stored(
    metadata: object, chapters: object, expected: list[tuple[str, str]]
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        Book.create(OWNER, "T", metadata, chapters)
    assert paths(exc) == expected


def test_created_event_does_not_share_state_with_the_caller() -> None:
    metadata = {"tags": ["a"]}
    book = Book.create(OWNER, "T", metadata)
    metadata["tags"].append("b")
    assert book.metadata == {"tags": ["a"]}


def test_update_title_metadata_or_both() -> None:
    book = Book.create(OWNER, "Old", {"a": 1})
    book.update(title="New")
    assert (book.title, book.metadata) == ("New", {"a": 1})
    book.update(metadata={"b": 2})
    assert (book.title, book.metadata) == ("New", {"b": 2})
    book.update(title="Newer", metadata={})
    assert (book.title, book.metadata, book.version) == ("Newer", {}, 4)
    with pytest.raises(ValidationFailed):
        book.update()
    with pytest.raises(ValidationFailed) as exc:
        book.update(title="  ", metadata="x")
    assert paths(exc) == [("/metadata", "metadata must be an object"), ("/title", "title is required")]
    assert book.version == 4


def test_add_chapter_appends_or_inserts_at_a_1_based_order() -> None:
    book = Book.create(OWNER, "T", chapters=[{"title": "B", "content": ""}])
    a = book.add_chapter("A", "", order=1)
    assert book.last_added_chapter_id == a and book.order_of(a) == 1
    book.add_chapter("D", "")
    book.add_chapter("C", "", order=3)
    book.add_chapter("E", "", order=5)
    assert titles(book) == ["A", "B", "C", "D", "E"]


@pytest.mark.parametrize("order", [0, -1, 3, "1", 1.0, True])
def test_add_chapter_refuses_an_order_out_of_range(order: object) -> None:
    book = Book.create(OWNER, "T", chapters=[{"title": "A", "content": ""}])
    with pytest.raises(ValidationFailed) as exc:
        book.add_chapter("B", "", order=order)
    assert paths(exc) == [("/order", "order must be an integer from 1 to 2")]
    assert titles(book) == ["A"] and book.version == 1


def test_add_chapter_requires_a_title() -> None:
    book = Book.create(OWNER, "T")
    with pytest.raises(ValidationFailed) as exc:
        book.add_chapter("", None)
    assert paths(exc) == [("/content", "content is required"), ("/title", "title is required")]


def test_edit_and_remove_chapter() -> None:
    book = Book.create(OWNER, "T", chapters=[{"title": "A", "content": "a"}, {"title": "B", "content": "b"}])
    first, second = (c.id for c in book.chapters)
    book.edit_chapter(first, title="A2")
    book.edit_chapter(second, content="b2")
    assert [(c.title, c.content) for c in book.chapters] == [("A2", "a"), ("B", "b2")]
    with pytest.raises(ValidationFailed):
        book.edit_chapter(first)
    with pytest.raises(ValidationFailed) as exc:
        book.edit_chapter(first, title="")
    assert paths(exc) == [("/title", "title is required")]
    with pytest.raises(NotFound):
        book.edit_chapter(new_id(), title="x")
    book.remove_chapter(first)
    assert titles(book) == ["B"]
    with pytest.raises(NotFound):
        book.remove_chapter(first)


def test_reorder_must_be_a_permutation() -> None:
    book = Book.create(OWNER, "T", chapters=[{"title": t, "content": ""} for t in "ABC"])
    a, b, c = book.chapter_ids
    book.reorder([c, a, b])
    assert titles(book) == ["C", "A", "B"]
    version = book.version
    with pytest.raises(ValidationFailed) as exc:
        book.reorder([a, b])
    assert paths(exc) == [("/chapter_ids", f"must be a permutation of the book's chapters; missing {c}")]
    with pytest.raises(ValidationFailed) as exc:
        book.reorder([a, a, b, c])
    assert paths(exc) == [("/chapter_ids/1", "duplicate chapter id")]
    with pytest.raises(ValidationFailed) as exc:
        book.reorder([a, b, c, new_id()])
    assert paths(exc) == [("/chapter_ids/3", "not a chapter of this book")]
    with pytest.raises(ValidationFailed):
        book.reorder("abc")
    assert titles(book) == ["C", "A", "B"] and book.version == version


def test_deleted_book_refuses_every_command() -> None:
    book = Book.create(OWNER, "T", chapters=[{"title": "A", "content": ""}])
    cid = book.chapter_ids[0]
    book.delete()
    assert book.deleted
    for command in (
        lambda: book.update(title="x"),
        lambda: book.add_chapter("x", ""),
        lambda: book.edit_chapter(cid, title="x"),
        lambda: book.remove_chapter(cid),
        lambda: book.reorder([cid]),
        book.delete,
    ):
        with pytest.raises(NotFound):
            command()


def test_replay_from_the_log_gives_the_same_book() -> None:
    codec = EventCodec([Book])
    book = Book.create(OWNER, "T", {"k": [1]}, [{"title": "A", "content": "a"}])
    book.add_chapter("B", "b", order=1)
    book.edit_chapter(book.chapter_ids[1], content="a2")
    book.reorder(list(reversed(book.chapter_ids)))
    book.update(title="T2")
    book.remove_chapter(book.chapter_ids[0])

    records = []
    events: list[Any] = list(book.collect_events())
    for position, event in enumerate(events, 1):
        new = codec.encode(event, actor=OWNER)
        records.append(Recorded(position, "book", book.id_str, new.type, new.version, new.at, new.data))
    again = codec.rebuild(records)
    assert isinstance(again, Book)
    assert (again.title, again.metadata, again.chapters, again.version) == (
        book.title,
        book.metadata,
        book.chapters,
        book.version,
    )


# -- the handlers ----------------------------------------------------------------


async def test_handler_create_and_reload(books: Any, repo: Repository, store: MemoryEventStore) -> None:
    saved = await books.create(ctx(), "Book", {"language": "fr"}, [{"title": "A", "content": "a"}])
    assert saved.position == 1 and saved.aggregate.owner_id == OWNER
    loaded = await repo.get(Book, saved.aggregate.id_str)
    assert loaded is not None and loaded.aggregate.chapters == saved.aggregate.chapters
    assert [r.type for r in store.records] == ["Book.Created"]
    assert store.records[0].data["chapters"][0]["title"] == "A"


async def test_handler_invalid_chapter_writes_nothing(books: Any, store: MemoryEventStore) -> None:
    with pytest.raises(ValidationFailed) as exc:
        await books.create(ctx(), "Book", None, [{"title": "ok", "content": ""}, {"title": "", "content": "x"}])
    assert exc.value.errors == [FieldError("/chapters/1/title", "title is required")]
    assert store.records == []


async def test_handler_commands_and_versions(books: Any, store: MemoryEventStore) -> None:
    book_id = (await books.create(ctx(), "Book")).aggregate.id_str
    saved = await books.add_chapter(ctx(), book_id, "A", "a")
    first = saved.aggregate.last_added_chapter_id
    assert first is not None and saved.aggregate.version == 2
    saved = await books.add_chapter(ctx(), book_id, "Z", "z", order=1, expected_version=2)
    second = saved.aggregate.last_added_chapter_id
    assert second is not None
    await books.edit_chapter(ctx(), book_id, first, title="A2")
    await books.reorder(ctx(), book_id, [first, second])
    await books.update(ctx(), book_id, title="Book 2", metadata={"author": "Ann"})
    saved = await books.remove_chapter(ctx(), book_id, second)
    assert titles(saved.aggregate) == ["A2"] and saved.aggregate.version == 7
    assert saved.position == len(store.records) == 7
    with pytest.raises(PreconditionFailed):
        await books.update(ctx(), book_id, title="stale", expected_version=3)
    await books.delete(ctx(), book_id, expected_version=7)
    with pytest.raises(NotFound):
        await books.update(ctx(), book_id, title="gone")
    assert len(store.records) == 8


async def test_handler_other_users_are_refused(books: Any, store: MemoryEventStore) -> None:
    saved = await books.create(ctx(), "Mine", None, [{"title": "A", "content": ""}])
    book_id, cid = saved.aggregate.id_str, saved.aggregate.chapter_ids[0]
    intruder = ctx(OTHER)
    for command in (
        books.update(intruder, book_id, title="x"),
        books.add_chapter(intruder, book_id, "x", ""),
        books.edit_chapter(intruder, book_id, cid, title="x"),
        books.remove_chapter(intruder, book_id, cid),
        books.reorder(intruder, book_id, [cid]),
        books.delete(intruder, book_id),
    ):
        with pytest.raises(Forbidden):
            await command
    with pytest.raises(Forbidden):
        await books.create(ctx(None), "anonymous")
    assert len(store.records) == 1


async def test_handler_malformed_or_unknown_ids_are_not_found(books: Any, store: MemoryEventStore) -> None:
    book_id = (await books.create(ctx(), "Book")).aggregate.id_str
    for command in (
        books.update(ctx(), "not-an-id", title="x"),
        books.update(ctx(), "ink.>", title="x"),
        books.update(ctx(), new_id(), title="x"),
        books.edit_chapter(ctx(), book_id, "../x", title="x"),
        books.remove_chapter(ctx(), book_id, new_id()),
        books.delete(ctx(), new_id()),
    ):
        with pytest.raises(NotFound):
            await command
    assert len(store.records) == 1


async def test_handler_reorder_refusal_writes_nothing(books: Any, store: MemoryEventStore) -> None:
    saved = await books.create(ctx(), "Book", None, [{"title": "A", "content": ""}, {"title": "B", "content": ""}])
    a, _ = saved.aggregate.chapter_ids
    with pytest.raises(ValidationFailed) as exc:
        await books.reorder(ctx(), saved.aggregate.id_str, [a])
    assert exc.value.errors[0].path == "/chapter_ids"
    assert len(store.records) == 1


async def test_handler_retry_with_the_same_command_id_lands_once(books: Any, store: MemoryEventStore) -> None:
    book_id = (await books.create(ctx(), "Book")).aggregate.id_str
    retry = ctx()
    first = await books.add_chapter(retry, book_id, "A", "a")
    chapter_id = first.aggregate.last_added_chapter_id  # read now: the repository reuses the object
    again = await books.add_chapter(retry, book_id, "A", "a")
    assert again.position == first.position and len(store.records) == 2
    assert again.aggregate.last_added_chapter_id == chapter_id
    assert titles(again.aggregate) == ["A"]
