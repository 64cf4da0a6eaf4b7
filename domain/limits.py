"""Bounds on everything the domain records, so that every accepted command can be stored.

The rule: a command the write side accepts must always project. An event is
one NATS message (1 MiB by default, headers included) and its values land in
read-model columns with ranges (``bigint``, ``jsonb``, ``text``); a value
outside them, accepted once, halts a projection for good. So every number,
text and JSON value an aggregate records is bounded here, before it reaches
the log.

Sizes are the bytes of the value encoded as compact JSON in UTF-8, escapes
included: what the log stores. ``Limits`` holds the limits an operator may
lower (``INKSTREAM_MAX_*`` settings); each has a ceiling here that keeps every
event under ``MAX_EVENT_BYTES`` whatever the settings say. The other
constants are fixed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

KIB = 1024
MIB = 1024 * KIB

MAX_JSON_DEPTH = 64
"""Containers (objects, arrays) nested inside each other, in a request body and in any stored JSON value."""

MAX_EVENT_BYTES = 960 * KIB
"""An event's JSON payload: NATS's default ``max_payload`` (1 MiB) less room for the message's headers."""

MIN_INT64 = -(2**63)
MAX_INT64 = 2**63 - 1
"""What a ``bigint`` (PostgreSQL) or ``long`` (MongoDB) column holds: version parts, positions."""

MAX_JSON_INT = 2**64 - 1
"""Integers inside JSON values: the widest the JSON codec (orjson) writes and reads back as an integer."""

MAX_BUCKETS_PER_BLOB = 100
"""Buckets one blob is filed in (each is checked in the log when the blob is created)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits an operator may lower; the defaults are the documented ones.

    ``chapters_per_book`` and ``chapter_bytes`` together bound the events that
    carry a chapter and the whole chapter order (``ChapterAdded``), so their
    ceilings are chosen together: 10,000 ids of 39 bytes plus a 512 KiB
    chapter stay under ``MAX_EVENT_BYTES``.
    """

    chapter_bytes: int = 256 * KIB
    chapters_per_book: int = 1_000
    book_bytes: int = 8 * MIB
    metadata_bytes: int = 64 * KIB
    blob_bytes: int = 512 * KIB
    schema_bytes: int = 256 * KIB
    schema_versions: int = 1_000
    schema_history_bytes: int = 8 * MIB

    def __post_init__(self) -> None:
        for item in fields(self):
            value, ceiling = getattr(self, item.name), CEILINGS[item.name]
            if not isinstance(value, int) or not 1 <= value <= ceiling:
                raise ValueError(f"{item.name} must be an integer from 1 to {ceiling}, not {value!r}")
        if self.schema_history_bytes < self.schema_bytes:
            raise ValueError(f"schema_history_bytes ({self.schema_history_bytes}) must be at least schema_bytes "
                             f"({self.schema_bytes}): a schema's first version could not be followed by any")


CEILINGS: dict[str, int] = {
    "chapter_bytes": 512 * KIB,
    "chapters_per_book": 10_000,
    "book_bytes": 64 * MIB,
    "metadata_bytes": 256 * KIB,
    "blob_bytes": 768 * KIB,
    "schema_bytes": 768 * KIB,
    "schema_versions": 10_000,
    "schema_history_bytes": 64 * MIB,
}
"""What no setting may exceed: each keeps every event under ``MAX_EVENT_BYTES`` (``book_bytes`` bounds
what a loaded book holds in memory: the write-side cache and an export; ``schema_versions`` and
``schema_history_bytes`` what a loaded schema holds and how many events loading it folds: everyone who
writes against a schema loads it, whoever made it long)."""


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON.

    Only for values that passed ``domain.errors.storable_errors`` (JSON types,
    no lone surrogates, bounded depth): the standard library's encoder
    recurses, and it would encode a lone surrogate that the log's encoder refuses.
    """
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8"))
