"""What the exports of one API process may hold in memory at once.

An export holds its book from the first chunk to the last (rendering reads it chapter by chapter),
and a client decides how long that is: one that reads slowly, or not at all until its stall time,
keeps the book alive. Slots per user bound one account; this bounds all of them together, so that
many accounts' exports can cost the export feature its turn (503, try again) but never the process
its memory. An export larger than the budget still runs when it is the only one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from commands.ports import Unavailable


PER_CHAPTER = 1024
"""A chapter's objects besides its texts (its model, its dict in the document, its id), as the row cache
weighs a row (``adapters/postgres/read_model.py``)."""
PER_METADATA_BYTE = 2 * 24
"""Metadata decoded, at its worst (``[{},{},...]``: 24 times its JSON text), held twice (the model and the
document it is dumped to)."""
CHUNKS_IN_FLIGHT = 6
"""A rendered chapter waiting for the client, at its largest (HTML of text that is all quotes: six times)."""


def held_bytes(title: str, metadata: Any, chapters: Sequence[tuple[str, str]]) -> int:
    """What an export holds while it runs, at most: its texts as Python strings (one to four bytes a
    character), each chapter's objects, the metadata decoded, and the largest chapter rendered and waiting."""
    contents = [sys.getsizeof(c) for _, c in chapters]
    texts = sum(contents) + sum(sys.getsizeof(t) for t, _ in chapters) + sys.getsizeof(title)
    largest = max(contents, default=0)
    return (texts + PER_CHAPTER * len(chapters) + PER_METADATA_BYTE * len(orjson.dumps(metadata))
            + CHUNKS_IN_FLIGHT * largest)


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
