"""Plain text export.

Layout (API.md): the title on the first line; then for chapter n a blank line,
``Chapter n: <title>``, a blank line and the content (both left out when the
content is empty). So chapters are separated from the title and from each
other by one blank line, and the file ends with a newline::

    My Book

    Chapter 1: Intro

    First chapter text.

    Chapter 2: Middle

    Second chapter text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from adapters.export.common import chapters, heading, title


def render_text(book: Mapping[str, Any]) -> Iterator[bytes]:
    yield f"{title(book)}\n".encode()
    for chapter in chapters(book):
        block = f"\n{heading(chapter)}\n"
        if chapter.content:
            block += f"\n{chapter.content}\n"
        yield block.encode()
