"""EPUB 3 export, built with ``zipfile`` and streamed entry by entry.

Layout: ``mimetype`` (first, stored), ``META-INF/container.xml``,
``EPUB/package.opf``, ``EPUB/nav.xhtml`` (the EPUB 3 table of contents),
``EPUB/title.xhtml`` and ``EPUB/chapter-NNNN.xhtml``, one per chapter.

Why not EbookLib: it does write valid EPUB 3 (``mimetype`` first and stored),
but it keeps the whole book in memory until the end, stamps ``dcterms:modified``
with the local wall clock, and re-parses every chapter with lxml's HTML parser,
turning a chapter it cannot parse into an empty file without an error. Built
here, the bytes stream out a chapter at a time, and the same book gives the
same file (dates come from the book's ``updated_at``).

Streaming: the archive is written into :class:`_Tail`, a sink that keeps only
the bytes of the entry being written (``zipfile`` seeks back to patch that
entry's header when it closes) and hands everything before it to the caller.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Mapping
from html import escape
from typing import Any

from adapters.export.common import ExportChapter, chapters, heading, language, meta_text, modified, title
from adapters.export.html import content_html

MIMETYPE = b"application/epub+zip"
OPF_PATH = "EPUB/package.opf"

_CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles>
<rootfile full-path="{opf}" media-type="application/oebps-package+xml"/>
</rootfiles>
</container>
"""

_XHTML_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops" lang="{lang}" xml:lang="{lang}">
<head>
<meta charset="utf-8"/>
<title>{title}</title>
</head>
"""

# Optional Dublin Core elements taken from the book's metadata when they are text.
_DC_FROM_METADATA = (
    ("author", "creator"),
    ("description", "description"),
    ("publisher", "publisher"),
    ("rights", "rights"),
)


class _Tail(io.RawIOBase):
    """A seekable sink that forgets what it has handed out."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._base = 0  # absolute offset of _buffer[0]
        self._pos = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        end = self._base + len(self._buffer)
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._pos + offset, io.SEEK_END: end + offset}[whence]
        if target < self._base:
            raise OSError("cannot seek back into bytes already streamed")
        self._pos = target
        return target

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        start = self._pos - self._base
        if start > len(self._buffer):
            self._buffer.extend(b"\x00" * (start - len(self._buffer)))
        self._buffer[start : start + len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def take(self) -> bytes:
        """Everything written so far; call only between archive entries."""
        data = bytes(self._buffer)
        self._base += len(self._buffer)
        self._buffer.clear()
        return data


def chapter_path(chapter: ExportChapter) -> str:
    """Relative to the package document."""
    return f"chapter-{chapter.number:04d}.xhtml"


def _xhtml(lang: str, page_title: str, body: str) -> bytes:
    return (_XHTML_HEAD.format(lang=lang, title=escape(page_title)) + f"<body>\n{body}</body>\n</html>\n").encode()


def _package(book: Mapping[str, Any], lang: str, chapter_list: list[ExportChapter]) -> bytes:
    identifier = escape(f"urn:uuid:{book.get('id') or ''}")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="book-id" xml:lang="{lang}">',
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">',
        f'<dc:identifier id="book-id">{identifier}</dc:identifier>',
        f"<dc:title>{escape(title(book)) or 'Untitled'}</dc:title>",
        f"<dc:language>{lang}</dc:language>",
    ]
    for key, element in _DC_FROM_METADATA:
        value = meta_text(book, key)
        if value:
            lines.append(f"<dc:{element}>{escape(value)}</dc:{element}>")
    lines += [
        f'<meta property="dcterms:modified">{modified(book).strftime("%Y-%m-%dT%H:%M:%SZ")}</meta>',
        "</metadata>",
        "<manifest>",
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>',
        '<item id="title-page" href="title.xhtml" media-type="application/xhtml+xml"/>',
    ]
    lines += [
        f'<item id="c{c.number:04d}" href="{chapter_path(c)}" media-type="application/xhtml+xml"/>'
        for c in chapter_list
    ]
    lines += ["</manifest>", "<spine>", '<itemref idref="title-page"/>']
    lines += [f'<itemref idref="c{c.number:04d}"/>' for c in chapter_list]
    lines += ["</spine>", "</package>", ""]
    return "\n".join(lines).encode()


def _nav(book: Mapping[str, Any], lang: str, chapter_list: list[ExportChapter]) -> bytes:
    # The toc's list must not be empty: a book without chapters lists its title page.
    items = [f'<li><a href="{chapter_path(c)}">{escape(heading(c))}</a></li>' for c in chapter_list] or [
        f'<li><a href="title.xhtml">{escape(title(book)) or "Untitled"}</a></li>'
    ]
    body = '<nav epub:type="toc" id="toc">\n<h1>Contents</h1>\n<ol>\n' + "\n".join(items) + "\n</ol>\n</nav>\n"
    return _xhtml(lang, "Contents", body)


def _title_page(book: Mapping[str, Any], lang: str) -> bytes:
    book_title = title(book)
    author = meta_text(book, "author")
    body = f"<h1>{escape(book_title)}</h1>\n" + (f'<p class="author">{escape(author)}</p>\n' if author else "")
    return _xhtml(lang, book_title or "Untitled", f'<section epub:type="titlepage">\n{body}</section>\n')


def _chapter_page(chapter: ExportChapter, lang: str) -> bytes:
    text = content_html(chapter.content)
    body = f'<section epub:type="chapter" id="chapter-{chapter.number}">\n<h1>{escape(heading(chapter))}</h1>\n'
    body += (text + "\n" if text else "") + "</section>\n"
    return _xhtml(lang, heading(chapter), body)


def render_epub(book: Mapping[str, Any]) -> Iterator[bytes]:
    lang = escape(language(book))
    toc = list(chapters(book, content=False))
    stamp = modified(book).timetuple()[:6]

    def entry(name: str, compress: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type = compress
        info.external_attr = 0o644 << 16
        return info

    sink = _Tail()
    with zipfile.ZipFile(sink, "w") as archive:
        archive.writestr(entry("mimetype", zipfile.ZIP_STORED), MIMETYPE)
        archive.writestr(entry("META-INF/container.xml"), _CONTAINER.format(opf=OPF_PATH))
        archive.writestr(entry(OPF_PATH), _package(book, lang, toc))
        archive.writestr(entry("EPUB/nav.xhtml"), _nav(book, lang, toc))
        archive.writestr(entry("EPUB/title.xhtml"), _title_page(book, lang))
        yield sink.take()
        for chapter in chapters(book):
            archive.writestr(entry(f"EPUB/{chapter_path(chapter)}"), _chapter_page(chapter, lang))
            yield sink.take()
    yield sink.take()
