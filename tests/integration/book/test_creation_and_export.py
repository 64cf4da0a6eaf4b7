"""Seed Task 7: create a book with metadata, add three chapters, export it in every format.

Through the SDK as a user would; raw HTTP where the assertion is the wire's
(X-Position, ETag, 201, an export's Content-Type and file name, a missing query parameter).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import aiohttp

from adapters.client import InkstreamClient, ValidationFailedError
from adapters.http.models_books import BookChanged
from tests.integration.book.client import (
    OPF_NS,
    XHTML,
    attachment_filename,
    epub_structure,
    export_answer,
    spine_documents,
    text_of,
)
from tests.support.sdk import SignUp, fails
from tests.support.wire import call, problem

SEED_CHAPTERS = [
    ("The Beginning", "Once upon a time..."),
    ("The Journey", "The hero set forth..."),
    ("The End", "And they lived happily ever after."),
]


async def _seed_book(ink: InkstreamClient) -> BookChanged:
    book = await ink.create_book("My Adventure", metadata={"genre": "fantasy", "author": "Test Author"})
    for order, (title, content) in enumerate(SEED_CHAPTERS, 1):
        chapter = await ink.add_chapter(book.id, title, content, order=order)
        assert chapter.order == order and chapter.title == title and chapter.content == content
    return book


async def test_create_with_metadata_answers_the_book_and_its_position(http: aiohttp.ClientSession,
                                                                      sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("My Adventure", metadata={"genre": "fantasy", "author": "Test Author"})
    assert book.title == "My Adventure"
    assert book.metadata == {"genre": "fantasy", "author": "Test Author"}
    assert book.chapters == [] and book.owner_id == ink.user_id
    assert book.version == 1 and book.position > 0
    assert (await ink.get_book(book.id)).model_dump() == book.model_dump(exclude={"position"})
    # On the wire: 201 with X-Position equal to the body's position; the book's ETag is its version.
    created = await call(http, "POST", "/v1/books", ink, json={"title": "Second", "metadata": {"genre": "sf"}})
    assert created.status == 201 and int(created.headers["X-Position"]) == created.body["position"] > book.position
    got = await call(http, "GET", f"/v1/books/{book.id}", ink)
    assert got.status == 200 and got.headers["ETag"] == f'"{book.version}"'
    assert got.body == book.model_dump(mode="json", exclude={"position"})


async def test_added_chapters_come_back_in_order(sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await _seed_book(ink)
    found = await ink.get_book(book.id)
    assert [(c.order, c.title, c.content) for c in found.chapters] == [
        (n, t, c) for n, (t, c) in enumerate(SEED_CHAPTERS, 1)
    ]
    assert set(found.chapters[0].model_dump()) == {"id", "title", "order", "content"}
    assert found.version == 4


async def test_add_chapter_answers_201_with_the_chapter_and_its_position(http: aiohttp.ClientSession,
                                                                         sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("Appending", chapters=[{"title": "One", "content": "1"}])
    answer = await call(http, "POST", f"/v1/books/{book.id}/chapters", ink, json={"title": "Two", "content": "2"})
    assert answer.status == 201
    chapter = answer.body
    assert int(answer.headers["X-Position"]) == chapter["position"] > book.position
    assert answer.headers["ETag"] == '"2"'
    assert chapter["order"] == 2 and chapter["title"] == "Two" and chapter["content"] == "2" and chapter["id"]
    ink.observe_position(chapter["position"])
    assert (await ink.add_chapter(book.id, "Zero", "0", order=1)).order == 1
    found = await ink.get_book(book.id)
    assert [c.title for c in found.chapters] == ["Zero", "One", "Two"]
    with fails(ValidationFailedError) as caught:
        await ink.add_chapter(book.id, "Far", "", order=9)
    assert [e["path"] for e in caught.value.errors] == ["/order"]


async def test_text_and_markdown_exports(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await _seed_book(ink)

    data, response = await export_answer(http, ink, book.id, "text")
    assert response.content_type == "text/plain"
    assert attachment_filename(response) == "My-Adventure.txt"
    assert await ink.export_book(book.id, "text") == data
    text = data.decode()
    assert text.splitlines()[0] == "My Adventure"
    for n, (title, content) in enumerate(SEED_CHAPTERS, 1):
        assert f"\nChapter {n}: {title}\n\n{content}\n" in text
    assert text.index("Chapter 1:") < text.index("Chapter 2:") < text.index("Chapter 3:")

    data, response = await export_answer(http, ink, book.id, "markdown")
    assert response.content_type == "text/markdown"
    assert attachment_filename(response) == "My-Adventure.md"
    markdown = data.decode()
    assert markdown.splitlines()[0] == "# My Adventure"
    for n, (title, content) in enumerate(SEED_CHAPTERS, 1):
        assert f"## Chapter {n}: {title}" in markdown.splitlines()
        assert content in markdown


async def test_html_export_is_a_standalone_document_with_a_table_of_contents(http: aiohttp.ClientSession,
                                                                             sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await _seed_book(ink)
    data, response = await export_answer(http, ink, book.id, "html")
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


async def test_epub_export_is_an_epub3_with_every_chapter(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await _seed_book(ink)
    data, response = await export_answer(http, ink, book.id, "epub")
    assert response.content_type == "application/epub+zip"
    assert attachment_filename(response) == "My-Adventure.epub"
    archive, package, manifest = epub_structure(data)
    assert package.findtext("opf:metadata/dc:title", namespaces=OPF_NS) == "My Adventure"
    assert package.findtext("opf:metadata/dc:creator", namespaces=OPF_NS) == "Test Author"
    assert package.findtext("opf:metadata/dc:identifier", namespaces=OPF_NS).endswith(book.id)
    texts = [text_of(doc) for doc in spine_documents(archive, package, manifest)]
    for n, (title, content) in enumerate(SEED_CHAPTERS, 1):
        holding = [t for t in texts if f"Chapter {n}: {title}" in t]
        assert len(holding) == 1 and content in holding[0], (n, texts)
    positions = [next(i for i, t in enumerate(texts) if f"Chapter {n}:" in t) for n in (1, 2, 3)]
    assert positions == sorted(positions)


async def test_an_unknown_format_is_a_422_naming_format(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("author")
    book = await ink.create_book("A Book")
    with fails(ValidationFailedError) as caught:
        await ink.export_book(book.id, "pdf")  # type: ignore[arg-type]
    assert [e["path"] for e in caught.value.errors] == ["/format"]
    # No format at all (the SDK always sends one), on the wire.
    body = problem(await call(http, "GET", f"/v1/books/{book.id}/export", ink), 422, "validation_failed",
                   "validation failed")
    assert [e["path"] for e in body["errors"]] == ["/format"]


async def test_list_books_holds_the_users_books_only(sign_up: SignUp) -> None:
    ink, other = await sign_up("author"), await sign_up("other")
    first = await ink.create_book("First", chapters=[{"title": "A", "content": "a"}])
    second = await ink.create_book("Second")
    await other.create_book("Not yours")
    page = await ink.list_books()
    assert [b.id for b in page.items] == [first.id, second.id] and page.next_cursor is None
    assert [c.model_dump() for c in page.items[0].chapters] == [{"id": first.chapters[0].id, "title": "A", "order": 1}]
    page = await ink.list_books(limit=1)
    assert [b.id for b in page.items] == [first.id] and page.next_cursor
    page = await ink.list_books(limit=1, cursor=page.next_cursor)
    assert [b.id for b in page.items] == [second.id] and page.next_cursor is None
