"""Markdown export (CommonMark / GFM).

Layout: ``# <title>``, then for chapter n ``## Chapter n: <title>`` and the
content, blocks separated by one blank line.

Content is text, never Markdown: it is escaped so that a rendered export shows
exactly the characters written and no line can open a block of its own.

* Anywhere: ``\\ ` * _ [ ] < > & ~ |`` get a backslash (no emphasis, code spans,
  links, raw HTML, entities, strikethrough or table cells).
* At the start of a line: ``# + - = : !`` get a backslash (no ATX heading, list,
  setext underline, thematic break, table delimiter row), and ``1.``/``1)``
  becomes ``1\\.`` (no ordered list).
* Leading spaces and tabs become ``&#32;``/``&#9;`` (no indented code block;
  CommonMark never reads a character reference as structure).

Titles get the same inline escapes plus ``#`` everywhere (no closing sequence),
and are joined into one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from adapters.export.common import chapters, heading, pieces, title

_INLINE = str.maketrans({c: "\\" + c for c in "\\`*_[]<>&~|"})
_TITLE = str.maketrans({c: "\\" + c for c in "\\`*_[]<>&~|#"})
_BLANK = re.compile(r"^[ \t]+$", re.MULTILINE)
_BARE_START = re.compile(r"^(?=[#+\-=:!])", re.MULTILINE)
_PER_LINE = re.compile(r"^(?:([ \t]+)(?:([#+\-=:!])|(\d{1,9})([.)]))?|(\d{1,9})([.)]))", re.MULTILINE)


def escape_title(text: str) -> str:
    return text.translate(_TITLE)


def _per_line(match: re.Match[str]) -> str:
    """An indented line's start (its blanks as references, then what would open a block escaped), or an
    unindented line's ordered-list marker (``1.`` → ``1\\.``)."""
    indent, start, digits, delimiter, bare_digits, bare_delimiter = match.groups()
    if indent is None:
        return f"{bare_digits}\\{bare_delimiter}"
    entities = indent.replace(" ", "&#32;").replace("\t", "&#9;")
    if start:
        return f"{entities}\\{start}"
    if digits:
        return f"{entities}{digits}\\{delimiter}"
    return entities


def escape_content(text: str) -> str:
    """Whole-text passes in C (``str.translate``, and substitutions whose replacement is a plain string):
    a chapter of 256 KiB in lines of two characters took 0.3 s line by line, all of it on the event
    loop. In order: the inline characters; lines of blanks only made empty (they separate paragraphs);
    a backslash before what would open a block at the start of an unindented line; then the only
    per-line Python left, for lines that need it: an indented line's leading blanks as character
    references and the same backslash after them, and an ordered-list marker made plain."""
    text = text.translate(_INLINE)
    text = _BLANK.sub("", text)
    text = _BARE_START.sub(r"\\", text)
    return _PER_LINE.sub(_per_line, text)


def render_markdown(book: Mapping[str, Any]) -> Iterator[bytes]:
    """One chunk per chapter, or per piece of a long chapter (escaping is line by line, so the pieces
    escaped apart and joined at their line ends are the chapter escaped whole)."""
    yield f"# {escape_title(title(book))}\n".encode()
    for chapter in chapters(book):
        block = f"\n## {escape_title(heading(chapter))}\n"
        if not chapter.content.strip(" \t") and "\n" not in chapter.content:  # escapes to nothing
            yield block.encode()
            continue
        before = block + "\n"  # then each piece after a line end, and a line end after the last
        parts = pieces(chapter.content)
        piece = next(parts)
        for following in parts:
            yield (before + escape_content(piece)).encode()
            before, piece = "\n", following
        yield (before + escape_content(piece) + "\n").encode()
