"""Rows as MongoDB documents and back, so both stores answer with the same values.

* Timestamps are stored as ISO 8601 strings in UTC with microseconds
  (``2026-11-30T12:09:42.927270+00:00``): BSON dates keep milliseconds only,
  which would change answers and the order of items created within one
  millisecond. The fixed-width form sorts as time does.
* JSON values (blob data, schemas, metadata, id lists) are stored as native
  BSON when MongoDB can hold them as they are. What it cannot (keys starting
  with ``$`` or holding ``.``, which JSON Schemas use, e.g. ``$ref`` beside
  ``$id`` would even come back as a DBRef; integers beyond 64 bits) is stored
  as its JSON text in a BSON binary of the user-defined subtype ``0x80``, and
  decoded on the way out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson
from bson import Binary

JSON_SUBTYPE = 0x80
BOOKKEEPING = ("_id", "_v", "_deleted", "_deleted_at")
_INT64 = range(-(2**63), 2**63)


def timestamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _storable(value: Any) -> bool:
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and not k.startswith("$") and "." not in k and "\x00" not in k and _storable(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return True
    if isinstance(value, int):
        return value in _INT64
    return False


def to_bson(value: Any) -> Any:
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, (dict, list, int)) and not isinstance(value, bool) and not _storable(value):
        return Binary(orjson.dumps(value), JSON_SUBTYPE)
    return value


def from_bson(value: Any) -> Any:
    if isinstance(value, Binary) and value.subtype == JSON_SUBTYPE:
        return orjson.loads(bytes(value))  # a bytes subclass, which orjson refuses
    return value


def encode_row(row: dict[str, Any]) -> dict[str, Any]:
    return {column: to_bson(value) for column, value in row.items()}


def decode_document(doc: dict[str, Any]) -> dict[str, Any]:
    """A document's columns, as the row that was written (without the store's bookkeeping)."""
    return {field: from_bson(value) for field, value in doc.items() if field not in BOOKKEEPING}
