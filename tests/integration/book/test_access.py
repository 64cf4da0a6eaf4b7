"""Only the owner reaches a book: someone else's is 403 on every route, an unknown one 404."""

from __future__ import annotations

import aiohttp

from tests.integration.book.client import create_book, get_book
from tests.support.users import new_user


def _routes(book_id: str, chapter_id: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/v1/books/{book_id}", None),
        ("PATCH", f"/v1/books/{book_id}", {"title": "Stolen"}),
        ("POST", f"/v1/books/{book_id}/chapters", {"title": "Intruder", "content": "x"}),
        ("PATCH", f"/v1/books/{book_id}/chapters/{chapter_id}", {"content": "defaced"}),
        ("POST", f"/v1/books/{book_id}/chapters/reorder", {"chapter_ids": [chapter_id]}),
        ("DELETE", f"/v1/books/{book_id}/chapters/{chapter_id}", None),
        ("GET", f"/v1/books/{book_id}/export?format=text", None),
        ("GET", f"/v1/books/{book_id}/export?format=markdown", None),
        ("GET", f"/v1/books/{book_id}/export?format=html", None),
        ("GET", f"/v1/books/{book_id}/export?format=epub", None),
        ("DELETE", f"/v1/books/{book_id}", None),
    ]


async def test_someone_elses_book_is_403_on_every_route(http: aiohttp.ClientSession) -> None:
    owner, intruder = await new_user(http, "owner"), await new_user(http, "intruder")
    book = await create_book(http, owner, "Private", chapters=[{"title": "Secret", "content": "diary"}])
    chapter = book["chapters"][0]["id"]
    for method, path, body in _routes(book["id"], chapter):
        async with http.request(method, path, json=body, headers=intruder.headers) as r:
            assert r.status == 403, (method, path, r.status)
            problem = await r.json()
            assert r.content_type == "application/problem+json"
            assert problem["code"] == "forbidden" and problem["detail"].startswith("forbidden"), problem
            assert "diary" not in str(problem) and "Secret" not in str(problem)
    # a body user_id naming someone else is refused too
    async with http.post("/v1/books", json={"title": "x", "user_id": owner.user_id}, headers=intruder.headers) as r:
        assert r.status == 403
    found = await get_book(http, owner, book["id"])
    assert found["title"] == "Private" and found["version"] == 1
    assert [(c["title"], c["content"]) for c in found["chapters"]] == [("Secret", "diary")]
    async with http.get("/v1/books", headers=intruder.headers) as r:
        assert (await r.json())["items"] == []


async def test_an_unknown_book_is_404_on_every_route(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "owner")
    mine = await create_book(http, user, "Mine", chapters=[{"title": "C", "content": "c"}])
    unknown = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    for book_id in (unknown, "not-an-id"):
        for method, path, body in _routes(book_id, mine["chapters"][0]["id"]):
            async with http.request(method, path, json=body, headers=user.headers) as r:
                assert r.status == 404, (method, path, r.status)
                assert (await r.json())["code"] == "not_found"


async def test_every_book_route_needs_a_token(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "owner")
    book = await create_book(http, user, "Mine", chapters=[{"title": "C", "content": "c"}])
    for method, path, body in [("POST", "/v1/books", {"title": "x"}), ("GET", "/v1/books", None),
                               *_routes(book["id"], book["chapters"][0]["id"])]:
        async with http.request(method, path, json=body) as r:
            assert r.status == 401, (method, path)
