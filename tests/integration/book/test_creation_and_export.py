"""Seed Task 7: create a book with metadata, add three chapters, export it in every format."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import aiohttp

from tests.integration.book.client import (
    OPF_NS,
    XHTML,
    add_chapter,
    attachment_filename,
    create_book,
    epub_structure,
    export,
    get_book,
    spine_documents,
    text_of,
)
from tests.support.users import new_user

SEED_CHAPTERS = [
    ("The Beginning", "Once upon a time..."),
    ("The Journey", "The hero set forth..."),
    ("The End", "And they lived happily ever after."),
]


async def _seed_book(http: aiohttp.ClientSession, user) -> dict:  # type: ignore[no-untyped-def]
    book = await create_book(http, user, "My Adventure", metadata={"genre": "fantasy", "author": "Test Author"})
    for order, (title, content) in enumerate(SEED_CHAPTERS, 1):
        chapter = await add_chapter(http, user, book["id"], title, content, order=order)
        assert chapter["order"] == order and chapter["title"] == title and chapter["content"] == content
    return book


async def test_create_with_metadata_answers_the_book_and_its_position(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user, "My Adventure", metadata={"genre": "fantasy", "author": "Test Author"})
    assert book["title"] == "My Adventure"
    assert book["metadata"] == {"genre": "fantasy", "author": "Test Author"}
    assert book["chapters"] == [] and book["owner_id"] == user.user_id
    assert book["version"] == 1 and book["position"] > 0
    assert await get_book(http, user, book["id"]) == {k: v for k, v in book.items() if k != "position"}


async def test_added_chapters_come_back_in_order(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await _seed_book(http, user)
    found = await get_book(http, user, book["id"])
    assert [(c["order"], c["title"], c["content"]) for c in found["chapters"]] == [
        (n, t, c) for n, (t, c) in enumerate(SEED_CHAPTERS, 1)
    ]
    assert set(found["chapters"][0]) == {"id", "title", "order", "content"}
    assert found["version"] == 4


async def test_add_chapter_answers_201_with_the_chapter_and_its_position(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user, "Appending", chapters=[{"title": "One", "content": "1"}])
    async with http.post(f"/v1/books/{book['id']}/chapters", json={"title": "Two", "content": "2"},
                         headers=user.headers) as r:
        assert r.status == 201
        chapter = await r.json()
        assert int(r.headers["X-Position"]) == chapter["position"] > book["position"]
        assert r.headers["ETag"] == '"2"'
    assert chapter["order"] == 2 and chapter["title"] == "Two" and chapter["content"] == "2" and chapter["id"]
    async with http.post(f"/v1/books/{book['id']}/chapters", json={"title": "Zero", "content": "0", "order": 1},
                         headers=user.headers) as r:
        assert r.status == 201 and (await r.json())["order"] == 1
    found = await get_book(http, user, book["id"])
    assert [c["title"] for c in found["chapters"]] == ["Zero", "One", "Two"]
    async with http.post(f"/v1/books/{book['id']}/chapters", json={"title": "Far", "content": "", "order": 9},
                         headers=user.headers) as r:
        assert r.status == 422
        assert [e["path"] for e in (await r.json())["errors"]] == ["/order"]


async def test_text_and_markdown_exports(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await _seed_book(http, user)

    data, response = await export(http, user, book["id"], "text")
    assert response.content_type == "text/plain"
    assert attachment_filename(response) == "My-Adventure.txt"
    text = data.decode()
    assert text.splitlines()[0] == "My Adventure"
    for n, (title, content) in enumerate(SEED_CHAPTERS, 1):
        assert f"\nChapter {n}: {title}\n\n{content}\n" in text
    assert text.index("Chapter 1:") < text.index("Chapter 2:") < text.index("Chapter 3:")

    data, response = await export(http, user, book["id"], "markdown")
    assert response.content_type == "text/markdown"
    assert attachment_filename(response) == "My-Adventure.md"
    markdown = data.decode()
    assert markdown.splitlines()[0] == "# My Adventure"
    for n, (title, content) in enumerate(SEED_CHAPTERS, 1):
        assert f"## Chapter {n}: {title}" in markdown.splitlines()
        assert content in markdown


async def test_html_export_is_a_standalone_document_with_a_table_of_contents(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await _seed_book(http, user)
    data, response = await export(http, user, book["id"], "html")
    assert response.content_type == "text/html"
    assert attachment_filename(response) == "My-Adventure.html"
    assert data.startswith(b"<!DOCTYPE html>")
    root = ET.fromstring(data)  # well-formed
    assert text_of(root.find(f"{XHTML}head/{XHTML}title")) == "My Adventure"
    toc = [text_of(a) for a in root.iter(f"{XHTML}a")]
    assert toc == [f"Chapter {n}: {t}" for n, (t, _) in enumerate(SEED_CHAPTERS, 1)]
    sections = list(root.iter(f"{XHTML}section"))
    assert len(sections) == 3
    for section, (n, (title, content)) in zip(sections, enumerate(SEED_CHAPTERS, 1)):
        assert text_of(section.find(f"{XHTML}h2")) == f"Chapter {n}: {title}"
        assert content in text_of(section)


async def test_epub_export_is_an_epub3_with_every_chapter(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await _seed_book(http, user)
    data, response = await export(http, user, book["id"], "epub")
    assert response.content_type == "application/epub+zip"
    assert attachment_filename(response) == "My-Adventure.epub"
    archive, package, manifest = epub_structure(data)
    assert package.findtext("opf:metadata/dc:title", namespaces=OPF_NS) == "My Adventure"
    assert package.findtext("opf:metadata/dc:creator", namespaces=OPF_NS) == "Test Author"
    assert package.findtext("opf:metadata/dc:identifier", namespaces=OPF_NS).endswith(book["id"])
    texts = [text_of(doc) for doc in spine_documents(archive, package, manifest)]
    for n, (title, content) in enumerate(SEED_CHAPTERS, 1):
        holding = [t for t in texts if f"Chapter {n}: {title}" in t]
        assert len(holding) == 1 and content in holding[0], (n, texts)
    positions = [next(i for i, t in enumerate(texts) if f"Chapter {n}:" in t) for n in (1, 2, 3)]
    assert positions == sorted(positions)


async def test_an_unknown_format_is_a_422_naming_format(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "author")
    book = await create_book(http, user)
    for params in ({"format": "pdf"}, {}):
        async with http.get(f"/v1/books/{book['id']}/export", params=params, headers=user.headers) as r:
            assert r.status == 422
            body = await r.json()
        assert body["code"] == "validation_failed" and [e["path"] for e in body["errors"]] == ["/format"]


async def test_list_books_holds_the_users_books_only(http: aiohttp.ClientSession) -> None:
    user, other = await new_user(http, "author"), await new_user(http, "other")
    first = await create_book(http, user, "First", chapters=[{"title": "A", "content": "a"}])
    second = await create_book(http, user, "Second")
    await create_book(http, other, "Not yours")
    async with http.get("/v1/books", headers=user.headers) as r:
        assert r.status == 200
        page = await r.json()
    assert [b["id"] for b in page["items"]] == [first["id"], second["id"]] and page["next_cursor"] is None
    assert page["items"][0]["chapters"] == [{"id": first["chapters"][0]["id"], "title": "A", "order": 1}]
    async with http.get("/v1/books", params={"limit": "1"}, headers=user.headers) as r:
        page = await r.json()
    assert [b["id"] for b in page["items"]] == [first["id"]] and page["next_cursor"]
    async with http.get("/v1/books", params={"limit": "1", "cursor": page["next_cursor"]}, headers=user.headers) as r:
        page = await r.json()
    assert [b["id"] for b in page["items"]] == [second["id"]] and page["next_cursor"] is None
