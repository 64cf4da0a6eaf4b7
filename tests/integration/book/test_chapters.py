"""Changing a book: reorder, update, edit and remove chapters, delete; If-Match.

Through the SDK as a user would; raw HTTP where the assertion is the wire's
(X-Position and ETag headers, a wrongly typed body).
"""

from __future__ import annotations

import aiohttp

from adapters.client import NotFoundError, PreconditionFailedError, ValidationFailedError
from tests.support.sdk import SignUp, fails
from tests.support.wire import call

THREE = [{"title": "One", "content": "first"}, {"title": "Two", "content": "second"},
         {"title": "Three", "content": "third"}]


async def test_reorder_changes_the_order_everywhere(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("Shuffled", chapters=THREE)
    one, two, three = (c.id for c in book.chapters)
    answer = await ink.reorder_chapters(book.id, [three, one, two])
    assert [(c.order, c.title) for c in answer.chapters] == [(1, "Three"), (2, "One"), (3, "Two")]
    found = await ink.get_book(book.id)
    assert [(c.order, c.id) for c in found.chapters] == [(1, three), (2, one), (3, two)]
    text = (await ink.export_book(book.id, "text")).decode()
    assert "Chapter 1: Three\n\nthird" in text and "Chapter 3: Two\n\nsecond" in text
    # On the wire: the reorder's answer carries its position in X-Position too.
    raw = await call(http, "POST", f"/v1/books/{book.id}/chapters/reorder", ink,
                     json={"chapter_ids": [one, two, three]})
    assert raw.status == 200 and int(raw.headers["X-Position"]) == raw.body["position"] > answer.position


async def test_a_reorder_that_is_not_a_permutation_is_a_422_and_changes_nothing(sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("Fixed", chapters=THREE)
    one, two, three = (c.id for c in book.chapters)
    refused = {
        "missing one": ([one, two], ["/chapter_ids"]),
        "duplicate": ([one, two, two, three], ["/chapter_ids/2"]),
        "unknown id": ([one, two, three, book.id], ["/chapter_ids/3"]),
        "empty": ([], ["/chapter_ids"]),
    }
    for name, (ids, paths) in refused.items():
        with fails(ValidationFailedError) as caught:
            await ink.reorder_chapters(book.id, ids)
        assert [e["path"] for e in caught.value.errors] == paths, (name, caught.value)
    found = await ink.get_book(book.id)
    assert [c.id for c in found.chapters] == [one, two, three] and found.version == 1


async def test_an_order_outside_the_book_is_a_422_naming_the_range(http: aiohttp.ClientSession,
                                                                 sign_up: SignUp) -> None:
    """The range is the book's (1 .. count+1): 0 and 10,001 are the same invalid value as count+2,
    and get the same 422 (they were a 400 from the request model's bounds)."""
    ink = await sign_up("author")
    book = await ink.create_book("Ranged", chapters=THREE)
    for order in (0, 5, 10_001, -1):
        raw = await call(http, "POST", f"/v1/books/{book.id}/chapters", ink,
                         json={"title": "Four", "content": "fourth", "order": order})
        assert raw.status == 422, (order, raw.body)
        assert raw.body["errors"] == [{"path": "/order", "message": "order must be an integer from 1 to 4"}]
    found = await ink.get_book(book.id)
    assert len(found.chapters) == 3 and found.version == 1


async def test_patch_retitles_and_replaces_metadata(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("Draft", metadata={"genre": "fantasy"})
    raw = await call(http, "PATCH", f"/v1/books/{book.id}", ink, json={"title": "Final"})
    assert raw.status == 200
    assert raw.headers["ETag"] == '"2"' and int(raw.headers["X-Position"]) == raw.body["position"]
    assert raw.body["title"] == "Final" and raw.body["metadata"] == {"genre": "fantasy"} and raw.body["version"] == 2
    ink.observe_position(raw.body["position"])
    await ink.update_book(book.id, metadata={"author": "Me"}, if_match=2)
    found = await ink.get_book(book.id)
    assert found.title == "Final" and found.metadata == {"author": "Me"} and found.version == 3
    with fails(ValidationFailedError) as caught:
        await ink.update_book(book.id, title="   ")
    assert caught.value.errors == [{"path": "/title", "message": "title is required"}]
    # A wrongly typed body, on the wire.
    assert (await call(http, "PATCH", f"/v1/books/{book.id}", ink, json={"title": 5})).status == 400


async def test_a_stale_if_match_is_a_412_and_changes_nothing(sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("Contested", chapters=THREE)
    chapter = book.chapters[0].id
    await ink.update_book(book.id, title="Mine")
    for attempt in (lambda: ink.update_book(book.id, title="Theirs", if_match=1),
                    lambda: ink.update_chapter(book.id, chapter, content="x", if_match=1),
                    lambda: ink.delete_chapter(book.id, chapter, if_match=1),
                    lambda: ink.add_chapter(book.id, "T", "", if_match=1),
                    lambda: ink.delete_book(book.id, if_match=1)):
        with fails(PreconditionFailedError):
            await attempt()
    found = await ink.get_book(book.id)
    assert found.title == "Mine" and found.version == 2 and len(found.chapters) == 3


async def test_edit_chapter(sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("Edited", chapters=THREE)
    two = book.chapters[1].id
    answer = await ink.update_chapter(book.id, two, title="Deux", content="seconde")
    assert (answer.id, answer.title, answer.content, answer.order) == (two, "Deux", "seconde", 2)
    await ink.update_chapter(book.id, two, content="zwei")
    found = await ink.get_book(book.id)
    assert found.chapters[1].model_dump() == {"id": two, "title": "Deux", "order": 2, "content": "zwei"}
    with fails(ValidationFailedError):
        await ink.update_chapter(book.id, two, title="")
    with fails(NotFoundError):
        await ink.update_chapter(book.id, book.id, title="x")


async def test_remove_chapter(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("Shorter", chapters=THREE)
    one, two, three = (c.id for c in book.chapters)
    raw = await call(http, "DELETE", f"/v1/books/{book.id}/chapters/{two}", ink)
    assert raw.status == 200 and int(raw.headers["X-Position"]) == raw.body["position"]
    answer = raw.body
    assert answer["deleted"] is True and answer["id"] == two and answer["title"] == "Two" and answer["order"] == 2
    ink.observe_position(answer["position"])
    found = await ink.get_book(book.id)
    assert [(c.order, c.id) for c in found.chapters] == [(1, one), (2, three)]
    text = (await ink.export_book(book.id, "text")).decode()
    assert "Chapter 2: Three" in text and "Two" not in text and "Chapter 3" not in text
    with fails(NotFoundError):
        await ink.delete_chapter(book.id, two)


async def test_delete_book(sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("Gone", chapters=THREE)
    answer = await ink.delete_book(book.id)
    assert answer.deleted is True and answer.id == book.id
    for attempt in (lambda: ink.get_book(book.id), lambda: ink.export_book(book.id, "text"),
                    lambda: ink.update_book(book.id, title="back"), lambda: ink.delete_book(book.id)):
        with fails(NotFoundError):
            await attempt()
    assert (await ink.list_books()).items == []


async def test_idempotency_key_adds_a_chapter_once(sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("Once")
    answers = [await ink.add_chapter(book.id, "Only", "once", idempotency_key="add-once") for _ in range(2)]
    assert answers[0] == answers[1]
    assert len((await ink.get_book(book.id)).chapters) == 1
