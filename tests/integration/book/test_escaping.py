"""Hostile content is text in every format: it never changes an export's structure."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import aiohttp
from markdown_it import MarkdownIt

from adapters.client import InkstreamClient
from adapters.http.models_books import BookChanged
from tests.integration.book.client import (
    XHTML,
    attachment_filename,
    epub_structure,
    export_answer,
    spine_documents,
    text_of,
)
from tests.support.sdk import SignUp

TITLE = 'Evil <script>alert("t")</script> & "quotes"\nChapter 9: injected'
HOSTILE = [
    {"title": "<b>bold</b> & <i>", "content": "<script>alert(1)</script>\n</body></html>\n<![CDATA[ x ]]> &amp; &lt;"},
    {"title": "# Not a heading\n## Chapter 7: fake", "content": "# Heading\n\n## Chapter 99: fake\n\n- item\n1. one\n"
                                                           "    indented code\n```\nfence\n```\n[link](javascript:x)"},
    {"title": "Quotes \" ' ` and ]]>", "content": "<img src=x onerror=alert(1)>\n<?xml version='1.0'?>\n"
                                                "<!DOCTYPE x [<!ENTITY e 'boom'>]>&e;"},
]


async def _hostile_book(sign_up: SignUp) -> tuple[InkstreamClient, BookChanged]:
    ink = await sign_up("hostile")
    book = await ink.create_book(TITLE, metadata={"author": "<script>x</script>", "language": "en\"><x"},
                                 chapters=HOSTILE)
    return ink, book


async def test_text_export_keeps_the_layout(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink, book = await _hostile_book(sign_up)
    data, response = await export_answer(http, ink, book.id, "text")  # raw: for its file name
    text = data.decode()
    lines = text.split("\n")
    assert lines[0] == 'Evil <script>alert("t")</script> & "quotes" Chapter 9: injected'  # one line, verbatim
    headings = [line for line in lines if re.match(r"^Chapter \d+: ", line)]
    assert headings == ["Chapter 1: <b>bold</b> & <i>", "Chapter 2: # Not a heading ## Chapter 7: fake",
                        "Chapter 3: Quotes \" ' ` and ]]>"]
    for chapter in HOSTILE:
        assert chapter["content"].rstrip("\n") in text
    assert re.fullmatch(r'[A-Za-z0-9-]+\.txt', attachment_filename(response))


async def test_markdown_export_renders_no_markup_from_content(sign_up: SignUp) -> None:
    ink, book = await _hostile_book(sign_up)
    markdown = (await ink.export_book(book.id, "markdown")).decode()
    tokens = MarkdownIt("commonmark").parse(markdown)
    headings = [(t.tag, tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert [tag for tag, _ in headings] == ["h1", "h2", "h2", "h2"]
    assert [re.sub(r"\\(.)", r"\1", text) for _, text in headings[1:]] == [
        "Chapter 1: <b>bold</b> & <i>", "Chapter 2: # Not a heading ## Chapter 7: fake",
        "Chapter 3: Quotes \" ' ` and ]]>"]
    structural = {t.type for t in tokens} - {"heading_open", "heading_close", "inline", "paragraph_open",
                                             "paragraph_close"}
    assert structural == set(), structural  # no lists, code blocks, fences or raw HTML blocks
    html = MarkdownIt("commonmark").render(markdown)
    for tag in ("<script", "<img", "<b>", "<a ", "<code", "<pre", "<li"):
        assert tag not in html, tag


async def test_html_export_escapes_everything(sign_up: SignUp) -> None:
    ink, book = await _hostile_book(sign_up)
    data = await ink.export_book(book.id, "html")
    root = ET.fromstring(data)
    tags = {el.tag.removeprefix(XHTML) for el in root.iter()}
    assert not tags & {"script", "b", "i", "img", "x"}, tags
    assert root.get("lang") == "en"
    assert text_of(root.find(f"{XHTML}head/{XHTML}title")) == ('Evil <script>alert("t")</script> & "quotes" '
                                                                "Chapter 9: injected")
    sections = list(root.iter(f"{XHTML}section"))
    assert len(sections) == 3
    assert "<script>alert(1)</script>" in text_of(sections[0]) and "&amp; &lt;" in text_of(sections[0])
    assert "<img src=x onerror=alert(1)>" in text_of(sections[2])


async def test_epub_export_escapes_everything(sign_up: SignUp) -> None:
    ink, book = await _hostile_book(sign_up)
    archive, package, manifest = epub_structure(await ink.export_book(book.id, "epub"))
    documents = spine_documents(archive, package, manifest)
    texts = [text_of(d) for d in documents]
    for document in documents:
        tags = {el.tag.removeprefix(XHTML) for el in document.iter()}
        assert not tags & {"script", "b", "i", "img", "x"}, tags
    for n, chapter in enumerate(HOSTILE, 1):
        first_line = chapter["content"].split("\n")[0]
        assert any(f"Chapter {n}:" in t and first_line in t for t in texts), (n, first_line)
    assert b"<!ENTITY" not in b"".join(archive.read(p) for p in manifest.values() if p.endswith(".xhtml"))
