"""One rich table printed a batch of rows at a time (``inkstream audit``), never held whole.

A rich ``Table`` lays out its columns from all its rows at once, so a table of every
event of a long history would hold all of them. Here the first batch is laid out as
rich lays it out alone, and its column widths are kept for every later batch (a wider
cell there folds onto more lines, as cells of the one table fold); a later batch
leaves out the title, the header and the top edge, and each batch's bottom edge is
held back until the next batch continues the table or ``close`` ends it. A history
of one batch prints exactly as ``console.print(table)`` of its rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.segment import Segment, Segments
from rich.table import Table


class HistoryTable:
    def __init__(self, console: Console, title: str, columns: Sequence[str]) -> None:
        self._console = console
        self._title = title
        self._columns = tuple(columns)
        self._widths: list[int] | None = None
        self._bottom: list[Segment] | None = None

    def _table(self) -> Table:
        first = self._widths is None
        table = Table(title=self._title if first else None, show_header=first)
        for i, column in enumerate(self._columns):
            table.add_column(column, overflow="fold", width=None if self._widths is None else self._widths[i])
        return table

    def add(self, rows: Iterable[Sequence[str]]) -> None:
        """Print ``rows`` as the table's next rows."""
        table = self._table()
        for row in rows:
            table.add_row(*row)
        first = self._widths is None
        if first:
            self._widths = _content_widths(self._console, table)
        lines = list(Segment.split_lines(self._console.render(table)))
        if not first:
            del lines[0]  # its top edge: the table goes on (and the previous batch's bottom edge is dropped)
        self._bottom = lines.pop()
        self._print(lines)

    def close(self) -> None:
        """End the table (its bottom edge); nothing when no row was added."""
        if self._bottom is not None:
            self._print([self._bottom])
            self._bottom = None

    def _print(self, lines: list[list[Segment]]) -> None:
        self._console.print(Segments([segment for line in lines for segment in (*line, Segment.line())]), end="")


def _content_widths(console: Console, table: Table) -> list[int]:
    """The widths of the columns' content as rich lays ``table`` out on ``console`` (what
    ``Table.__rich_console__`` computes; rich has no public way to ask, and is pinned below 16)."""
    options = console.options
    widths = table._calculate_column_widths(console, options.update_width(options.max_width - table._extra_width))
    return [width - table._get_padding_width(i) for i, width in enumerate(widths)]
