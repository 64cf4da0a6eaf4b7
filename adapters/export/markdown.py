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

from adapters.export.common import chapters, heading, title

_INLINE = re.compile(r"([\\`*_\[\]<>&~|])")
_TITLE = re.compile(r"([\\`*_\[\]<>&~|#])")
_LINE_START = frozenset("#+-=:!")
_ORDERED = re.compile(r"^(\d{1,9})([.)])")


def escape_title(text: str) -> str:
    return _TITLE.sub(r"\\\1", text)


def escape_line(line: str) -> str:
    body = line.lstrip(" \t")
    if not body:
        return ""  # a blank line stays blank: it separates paragraphs
    indent = line[: len(line) - len(body)]
    body = _INLINE.sub(r"\\\1", body)
    if body[0] in _LINE_START:
        body = "\\" + body
    else:
        body = _ORDERED.sub(r"\1\\\2", body)
    return indent.replace(" ", "&#32;").replace("\t", "&#9;") + body


def escape_content(text: str) -> str:
    return "\n".join(escape_line(line) for line in text.split("\n"))


def render_markdown(book: Mapping[str, Any]) -> Iterator[bytes]:
    yield f"# {escape_title(title(book))}\n".encode()
    for chapter in chapters(book):
        content = escape_content(chapter.content)
        block = f"\n## {escape_title(heading(chapter))}\n"
        if content:
            block += f"\n{content}\n"
        yield block.encode()
