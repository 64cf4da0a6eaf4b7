"""List cursors and limits shared by every read-model store.

A cursor is opaque to clients: base64url JSON of the last item's sort key, so
keyset paging stays stable while items are added, and both stores hand out
the same cursor for the same page. A cursor a store did not hand out is
``InvalidCursor`` (400), before it reaches the database: a forged one must not
carry what a database refuses (NUL, integers out of 64 bits).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson

from projections.read_model import MAX_LIMIT, InvalidCursor


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidCursor("invalid cursor") from None
    if not isinstance(key, list) or len(key) != size:
        raise InvalidCursor("invalid cursor")
    for part in key:
        if (isinstance(part, str) and "\x00" in part) or (isinstance(part, int) and not -(2**63) <= part < 2**63):
            raise InvalidCursor("invalid cursor")
    return key


def time_cursor(cursor: str | None) -> tuple[datetime | None, str | None]:
    """The (created_at, id) of a list ordered oldest first."""
    if not cursor:
        return None, None
    at, last_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(at), str(last_id)
    except (TypeError, ValueError):
        raise InvalidCursor("invalid cursor") from None


def semver_cursor(cursor: str | None) -> list[Any] | None:
    """The (major, minor, patch, pre) of schema versions ordered newest first."""
    if not cursor:
        return None
    after = decode_cursor(cursor, 4)
    if not (all(isinstance(v, int) and not isinstance(v, bool) for v in after[:3]) and isinstance(after[3], str)):
        raise InvalidCursor("invalid cursor")
    return after


def id_cursor(cursor: str | None) -> str | None:
    return str(decode_cursor(cursor, 1)[0]) if cursor is not None else None


def clamp_limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))
