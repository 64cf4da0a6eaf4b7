"""Book exports: text, markdown, html and epub, each streamed as byte chunks."""

from adapters.export.formats import FORMATS, ExportFormat, Renderer, get_format

__all__ = ["FORMATS", "ExportFormat", "Renderer", "get_format"]
