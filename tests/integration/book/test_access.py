"""Only the owner reaches a book: someone else's is 403 on every route, an unknown one 404."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from adapters.client import ForbiddenError, InkstreamClient, NotFoundError, UnauthorizedError
from tests.support.sdk import SignUp, fails
from tests.support.system import RunningSystem
from tests.support.wire import call, problem

Attempt = tuple[str, Callable[[], Awaitable[Any]]]


def _routes(ink: InkstreamClient, book_id: str, chapter_id: str) -> list[Attempt]:
    """Every book route, called by ``ink`` on ``book_id``."""
    exports: list[Attempt] = [(f"export {fmt}", lambda fmt=fmt: ink.export_book(book_id, fmt))
                              for fmt in ("text", "markdown", "html", "epub")]
    return [
        ("get", lambda: ink.get_book(book_id)),
        ("update", lambda: ink.update_book(book_id, title="Stolen")),
        ("add chapter", lambda: ink.add_chapter(book_id, "Intruder", "x")),
        ("update chapter", lambda: ink.update_chapter(book_id, chapter_id, content="defaced")),
        ("reorder", lambda: ink.reorder_chapters(book_id, [chapter_id])),
        ("delete chapter", lambda: ink.delete_chapter(book_id, chapter_id)),
        *exports,
        ("delete", lambda: ink.delete_book(book_id)),
    ]


async def test_someone_elses_book_is_403_on_every_route(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    owner, intruder = await sign_up("owner"), await sign_up("intruder")
    book = await owner.create_book("Private", chapters=[{"title": "Secret", "content": "diary"}])
    intruder.observe_position(owner.last_position)  # its reads see the owner's book
    for name, attempt in _routes(intruder, book.id, book.chapters[0].id):
        with fails(ForbiddenError) as caught:
            await attempt()
        assert "diary" not in str(caught.value.body) and "Secret" not in str(caught.value.body), name
    # On the wire: a problem+json answer that tells nothing of the book.
    answer = await call(http, "GET", f"/v1/books/{book.id}", intruder)
    body = problem(answer, 403, "forbidden", "forbidden")
    assert "diary" not in str(body) and "Secret" not in str(body)
    # a body user_id naming someone else is refused too (the SDK never sends one)
    answer = await call(http, "POST", "/v1/books", intruder, json={"title": "x", "user_id": owner.user_id})
    assert answer.status == 403
    found = await owner.get_book(book.id)
    assert found.title == "Private" and found.version == 1
    assert [(c.title, c.content) for c in found.chapters] == [("Secret", "diary")]
    assert (await intruder.list_books()).items == []


async def test_an_unknown_book_is_404_on_every_route(sign_up: SignUp) -> None:
    ink = await sign_up("owner")
    mine = await ink.create_book("Mine", chapters=[{"title": "C", "content": "c"}])
    unknown = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    for book_id in (unknown, "not-an-id"):
        for name, attempt in _routes(ink, book_id, mine.chapters[0].id):
            with fails(NotFoundError):
                await attempt()


async def test_every_book_route_needs_a_token(system: RunningSystem, http: aiohttp.ClientSession,
                                              sign_up: SignUp) -> None:
    ink = await sign_up("owner")
    book = await ink.create_book("Mine", chapters=[{"title": "C", "content": "c"}])
    anonymous = InkstreamClient(system.base_url, session=http)
    for name, attempt in [("create", lambda: anonymous.create_book("x")), ("list", anonymous.list_books),
                          *_routes(anonymous, book.id, book.chapters[0].id)]:
        with fails(UnauthorizedError):
            await attempt()
