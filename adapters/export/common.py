"""What every export format needs from a book dict (as ``queries.books.get_book`` answers it).

Renderers treat every string of the book as plain text: titles become one line,
characters that XML 1.0 forbids are dropped, and each format escapes the rest
its own way, so no content can change the structure of an export.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

# XML 1.0 Char production, complemented; lone surrogates are dropped with it.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=timezone.utc)  # ZIP cannot date anything earlier
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True, slots=True)
class ExportChapter:
    number: int  # 1-based, as in "Chapter n"
    title: str
    content: str


def xml_safe(text: str) -> str:
    return _NOT_XML.sub("", text)


def one_line(text: str) -> str:
    """A title on one line: a newline in a title must not start a new line of the export."""
    return " ".join(xml_safe(text).split())


def normalized_content(text: str) -> str:
    """``\\n`` line ends only, no trailing line ends (the layout adds its own)."""
    return xml_safe(text).replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")


def chapters(book: Mapping[str, Any], *, content: bool = True) -> Iterator[ExportChapter]:
    """In the order the book lists them (the query answers them in order).

    Lazily, one chapter at a time; ``content=False`` leaves contents empty, for
    tables of contents that precede the chapters.
    """
    for number, chapter in enumerate(book.get("chapters") or [], 1):
        text = normalized_content(str(chapter.get("content") or "")) if content else ""
        yield ExportChapter(number, one_line(str(chapter.get("title") or "")), text)


def title(book: Mapping[str, Any]) -> str:
    return one_line(str(book.get("title") or ""))


def heading(chapter: ExportChapter) -> str:
    return f"Chapter {chapter.number}: {chapter.title}"


def metadata(book: Mapping[str, Any]) -> Mapping[str, Any]:
    value = book.get("metadata")
    return value if isinstance(value, Mapping) else {}


def meta_text(book: Mapping[str, Any], key: str) -> str | None:
    """A metadata field as one line of text: a string, or a list of strings joined with commas."""
    value = metadata(book).get(key)
    if isinstance(value, list):
        value = ", ".join(v for v in value if isinstance(v, str))
    if not isinstance(value, str):
        return None
    return one_line(value) or None


def language(book: Mapping[str, Any]) -> str:
    """``metadata.language`` when it looks like a BCP 47 tag, else ``en``."""
    value = metadata(book).get("language")
    return value if isinstance(value, str) and _LANGUAGE.fullmatch(value) else "en"


def modified(book: Mapping[str, Any]) -> datetime:
    """The book's last change (UTC, whole seconds), not before 1980 (ZIP dates start there)."""
    value = book.get("updated_at")
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        parsed = _ZIP_EPOCH
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return max(parsed.astimezone(timezone.utc).replace(microsecond=0), _ZIP_EPOCH)


PIECE_CHARS = 16 * 1024
"""How much of a chapter's content a renderer escapes in one step, where escaping takes a Python step per
line (markdown's indented lines): the event loop runs other requests between the export's chunks."""


def pieces(text: str, size: int = PIECE_CHARS) -> Iterator[str]:
    """``text`` cut at line ends into pieces of about ``size`` characters (a longer line is one piece):
    ``"\\n".join(pieces(text)) == text``."""
    start = 0
    while len(text) - start > size:
        cut = text.rfind("\n", start, start + size)
        if cut < 0:
            cut = text.find("\n", start + size)
            if cut < 0:
                break
        yield text[start:cut]
        start = cut + 1
    yield text[start:]


PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
"""Blank lines separate paragraphs."""

