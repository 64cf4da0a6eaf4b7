"""Seed Task 11, transactional case: a book created with chapters is all or nothing."""

from __future__ import annotations

import aiohttp

from tests.support.system import RunningSystem
from tests.support.users import new_user


async def test_an_invalid_second_chapter_leaves_no_book_and_no_event(system: RunningSystem,
                                                                     http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "atomic")
    before = await system.container.store.last_position()
    request = {
        "user_id": user.user_id,
        "title": "Atomic Book",
        "chapters": [{"title": "Chapter 1", "content": "Content 1"}, {"title": "", "content": "Content 2"}],
    }
    async with http.post("/v1/books", json=request, headers=user.headers) as r:
        assert r.status == 422
        problem = await r.json()
    assert problem["code"] == "validation_failed" and problem["detail"].startswith("validation failed")
    assert problem["errors"] == [{"path": "/chapters/1/title", "message": "title is required"}]

    async with http.get("/v1/books", headers=user.headers) as r:
        assert r.status == 200
        assert (await r.json())["items"] == []
    assert await system.container.store.last_position() == before


async def test_every_invalid_chapter_is_reported_sorted_by_path(system: RunningSystem,
                                                                http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "atomic")
    before = await system.container.store.last_position()
    chapters = [{"title": "ok", "content": ""}, {"content": "no title"}, {"title": "   "}, {"title": "fine", "content": "x"}]
    async with http.post("/v1/books", json={"title": "", "chapters": chapters}, headers=user.headers) as r:
        assert r.status == 422
        problem = await r.json()
    assert problem["errors"] == [
        {"path": "/chapters/1/title", "message": "title is required"},
        {"path": "/chapters/2/content", "message": "content is required"},
        {"path": "/chapters/2/title", "message": "title is required"},
        {"path": "/title", "message": "title is required"},
    ]
    async with http.get("/v1/books", headers=user.headers) as r:
        assert (await r.json())["items"] == []
    assert await system.container.store.last_position() == before


async def test_a_valid_create_with_chapters_is_one_event(system: RunningSystem, http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "atomic")
    before = await system.container.store.last_position()
    chapters = [{"title": "Chapter 1", "content": "Content 1"}, {"title": "Chapter 2", "content": "Content 2"}]
    async with http.post("/v1/books", json={"title": "Atomic Book", "chapters": chapters}, headers=user.headers) as r:
        assert r.status == 201
        book = await r.json()
    assert [(c["order"], c["title"]) for c in book["chapters"]] == [(1, "Chapter 1"), (2, "Chapter 2")]
    assert book["version"] == 1
    async with http.get("/v1/books", headers=user.headers) as r:
        assert [b["id"] for b in (await r.json())["items"]] == [book["id"]]
    history = await system.container.repo.history("book", book["id"])
    assert [h.type for h in history] == ["Book.Created"] and history[0].position == book["position"]
    assert book["position"] > before
