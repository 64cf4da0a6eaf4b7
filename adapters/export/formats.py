"""The export formats: name -> content type, file extension and renderer.

A renderer takes a book as the ``BookOut`` document answers it
(``model_dump(mode="json")``) and yields the file as byte chunks (about one per chapter), so a large book
streams to the client instead of being built whole first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.export.epub import render_epub
from adapters.export.html import render_html
from adapters.export.markdown import render_markdown
from adapters.export.text import render_text
from domain.errors import FieldError, ValidationFailed

Renderer = Callable[[Mapping[str, Any]], Iterator[bytes]]


@dataclass(frozen=True, slots=True)
class ExportFormat:
    name: str
    content_type: str
    extension: str
    render: Renderer

    def filename(self, title: str) -> str:
        """An ASCII file name for ``Content-Disposition`` (the title, slugged; ``book`` when nothing is left)."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")[:80].strip("-") or "book"
        return f"{slug}.{self.extension}"


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("text", "text/plain; charset=utf-8", "txt", render_text),
        ExportFormat("markdown", "text/markdown; charset=utf-8", "md", render_markdown),
        ExportFormat("html", "text/html; charset=utf-8", "html", render_html),
        ExportFormat("epub", "application/epub+zip", "epub", render_epub),
    )
}


def get_format(name: str | None) -> ExportFormat:
    """The format called ``name``; 422 with path ``/format`` for anything else."""
    found = FORMATS.get(name or "")
    if found is None:
        message = f"format must be one of {', '.join(FORMATS)}"
        raise ValidationFailed(message, [FieldError("/format", message)])
    return found
