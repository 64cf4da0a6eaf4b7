"""What the exports of one API process may hold in memory at once.

An export holds its book from the first chunk to the last (rendering reads it chapter by chapter),
and a client decides how long that is: one that reads slowly, or not at all until its stall time,
keeps the book alive. Slots per user bound one account; this bounds all of them together, so that
many accounts' exports can cost the export feature its turn (503, try again) but never the process
its memory. An export larger than the budget still runs when it is the only one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from commands.ports import Unavailable


def held_bytes(texts: Iterator[str]) -> int:
    """What a book's texts take in memory as Python strings (one to four bytes a character)."""
    return sum(sys.getsizeof(text) for text in texts)


class ExportMemory:
    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self.held = 0

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """``size`` bytes held until the block ends; ``Unavailable`` (503) when they do not fit."""
        if self.held and self.held + size > self.budget:
            raise Unavailable("too many exports are in progress: try again in a moment", retry_after=5.0)
        self.held += size
        try:
            yield
        finally:
            self.held -= size
