"""Changing a book: reorder, update, edit and remove chapters, delete; If-Match."""

from __future__ import annotations

import aiohttp

from tests.integration.book.client import create_book, export, get_book
from tests.support.users import new_user

THREE = [{"title": "One", "content": "first"}, {"title": "Two", "content": "second"},
         {"title": "Three", "content": "third"}]


async def test_reorder_changes_the_order_everywhere(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user, "Shuffled", chapters=THREE)
    one, two, three = (c["id"] for c in book["chapters"])
    async with http.post(f"/v1/books/{book['id']}/chapters/reorder", json={"chapter_ids": [three, one, two]},
                         headers=user.headers) as r:
        assert r.status == 200
        answer = await r.json()
        assert int(r.headers["X-Position"]) == answer["position"]
    assert [(c["order"], c["title"]) for c in answer["chapters"]] == [(1, "Three"), (2, "One"), (3, "Two")]
    found = await get_book(http, user, book["id"])
    assert [(c["order"], c["id"]) for c in found["chapters"]] == [(1, three), (2, one), (3, two)]
    text = (await export(http, user, book["id"], "text"))[0].decode()
    assert "Chapter 1: Three\n\nthird" in text and "Chapter 3: Two\n\nsecond" in text


async def test_a_reorder_that_is_not_a_permutation_is_a_422_and_changes_nothing(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user, "Fixed", chapters=THREE)
    one, two, three = (c["id"] for c in book["chapters"])
    refused = {
        "missing one": ([one, two], ["/chapter_ids"]),
        "duplicate": ([one, two, two, three], ["/chapter_ids/2"]),
        "unknown id": ([one, two, three, book["id"]], ["/chapter_ids/3"]),
        "empty": ([], ["/chapter_ids"]),
    }
    for name, (ids, paths) in refused.items():
        async with http.post(f"/v1/books/{book['id']}/chapters/reorder", json={"chapter_ids": ids},
                             headers=user.headers) as r:
            assert r.status == 422, name
            body = await r.json()
        assert body["code"] == "validation_failed" and body["detail"].startswith("validation failed")
        assert [e["path"] for e in body["errors"]] == paths, (name, body)
    found = await get_book(http, user, book["id"])
    assert [c["id"] for c in found["chapters"]] == [one, two, three] and found["version"] == 1


async def test_patch_retitles_and_replaces_metadata(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user, "Draft", metadata={"genre": "fantasy"})
    async with http.patch(f"/v1/books/{book['id']}", json={"title": "Final"}, headers=user.headers) as r:
        assert r.status == 200
        answer = await r.json()
        assert r.headers["ETag"] == '"2"' and int(r.headers["X-Position"]) == answer["position"]
    assert answer["title"] == "Final" and answer["metadata"] == {"genre": "fantasy"} and answer["version"] == 2
    async with http.patch(f"/v1/books/{book['id']}", json={"metadata": {"author": "Me"}},
                          headers={**user.headers, "If-Match": '"2"'}) as r:
        assert r.status == 200
    found = await get_book(http, user, book["id"])
    assert found["title"] == "Final" and found["metadata"] == {"author": "Me"} and found["version"] == 3
    async with http.patch(f"/v1/books/{book['id']}", json={"title": "   "}, headers=user.headers) as r:
        assert r.status == 422
        assert (await r.json())["errors"] == [{"path": "/title", "message": "title is required"}]
    async with http.patch(f"/v1/books/{book['id']}", json={"title": 5}, headers=user.headers) as r:
        assert r.status == 400


async def test_a_stale_if_match_is_a_412_and_changes_nothing(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user, "Contested", chapters=THREE)
    chapter = book["chapters"][0]["id"]
    async with http.patch(f"/v1/books/{book['id']}", json={"title": "Mine"}, headers=user.headers) as r:
        assert r.status == 200
    stale = {**user.headers, "If-Match": '"1"'}
    attempts = [
        http.patch(f"/v1/books/{book['id']}", json={"title": "Theirs"}, headers=stale),
        http.patch(f"/v1/books/{book['id']}/chapters/{chapter}", json={"content": "x"}, headers=stale),
        http.delete(f"/v1/books/{book['id']}/chapters/{chapter}", headers=stale),
        http.post(f"/v1/books/{book['id']}/chapters", json={"title": "T", "content": ""}, headers=stale),
        http.delete(f"/v1/books/{book['id']}", headers=stale),
    ]
    for attempt in attempts:
        async with attempt as r:
            assert r.status == 412
            body = await r.json()
            assert body["code"] == "precondition_failed" and body["detail"].startswith("precondition failed")
    found = await get_book(http, user, book["id"])
    assert found["title"] == "Mine" and found["version"] == 2 and len(found["chapters"]) == 3


async def test_edit_chapter(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user, "Edited", chapters=THREE)
    two = book["chapters"][1]["id"]
    async with http.patch(f"/v1/books/{book['id']}/chapters/{two}", json={"title": "Deux", "content": "seconde"},
                          headers=user.headers) as r:
        assert r.status == 200
        answer = await r.json()
    assert (answer["id"], answer["title"], answer["content"], answer["order"]) == (two, "Deux", "seconde", 2)
    async with http.patch(f"/v1/books/{book['id']}/chapters/{two}", json={"content": "zwei"},
                          headers=user.headers) as r:
        assert r.status == 200
    found = await get_book(http, user, book["id"])
    assert found["chapters"][1] == {"id": two, "title": "Deux", "order": 2, "content": "zwei"}
    async with http.patch(f"/v1/books/{book['id']}/chapters/{two}", json={"title": ""}, headers=user.headers) as r:
        assert r.status == 422
    async with http.patch(f"/v1/books/{book['id']}/chapters/{book['id']}", json={"title": "x"},
                          headers=user.headers) as r:
        assert r.status == 404


async def test_remove_chapter(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user, "Shorter", chapters=THREE)
    one, two, three = (c["id"] for c in book["chapters"])
    async with http.delete(f"/v1/books/{book['id']}/chapters/{two}", headers=user.headers) as r:
        assert r.status == 200
        answer = await r.json()
        assert int(r.headers["X-Position"]) == answer["position"]
    assert answer["deleted"] is True and answer["id"] == two and answer["title"] == "Two" and answer["order"] == 2
    found = await get_book(http, user, book["id"])
    assert [(c["order"], c["id"]) for c in found["chapters"]] == [(1, one), (2, three)]
    text = (await export(http, user, book["id"], "text"))[0].decode()
    assert "Chapter 2: Three" in text and "Two" not in text and "Chapter 3" not in text
    async with http.delete(f"/v1/books/{book['id']}/chapters/{two}", headers=user.headers) as r:
        assert r.status == 404


async def test_delete_book(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user, "Gone", chapters=THREE)
    async with http.delete(f"/v1/books/{book['id']}", headers=user.headers) as r:
        assert r.status == 200
        answer = await r.json()
    assert answer["deleted"] is True and answer["id"] == book["id"]
    for request in (http.get(f"/v1/books/{book['id']}", headers=user.headers),
                    http.get(f"/v1/books/{book['id']}/export?format=text", headers=user.headers),
                    http.patch(f"/v1/books/{book['id']}", json={"title": "back"}, headers=user.headers),
                    http.delete(f"/v1/books/{book['id']}", headers=user.headers)):
        async with request as r:
            assert r.status == 404
            assert (await r.json())["code"] == "not_found"
    async with http.get("/v1/books", headers=user.headers) as r:
        assert (await r.json())["items"] == []


async def test_idempotency_key_adds_a_chapter_once(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user, "Once")
    headers = {**user.headers, "Idempotency-Key": "add-once"}
    answers = []
    for _ in range(2):
        async with http.post(f"/v1/books/{book['id']}/chapters", json={"title": "Only", "content": "once"},
                             headers=headers) as r:
            assert r.status == 201
            answers.append(await r.json())
    assert answers[0] == answers[1]
    assert len((await get_book(http, user, book["id"]))["chapters"]) == 1
