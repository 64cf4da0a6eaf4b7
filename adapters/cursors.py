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
from datetime import datetime, timezone
from typing import Any

import orjson

from domain.ids import is_id
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
    """(created_at, id) of the last item of the previous page, in a list ordered oldest first.

    Exactly what the stores hand out: an RFC 3339 time with its offset and an
    id. Anything else is refused here, never an error of a driver: a time whose
    offset takes it outside ``datetime``'s years 1-9999 when moved to UTC
    (``0001-01-01T00:00:00+14:00``) overflows in asyncpg.
    """
    if not cursor:
        return None, None
    at, last_id = decode_cursor(cursor, 2)
    if not isinstance(at, str) or not is_id(last_id):
        raise InvalidCursor("invalid cursor")
    try:
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("a cursor's time has an offset")
        return when.astimezone(timezone.utc), last_id
    except (ValueError, OverflowError):
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
    """The id of the last item of the previous page, in a list ordered by id."""
    if cursor is None:
        return None
    [last_id] = decode_cursor(cursor, 1)
    if not is_id(last_id):
        raise InvalidCursor("invalid cursor")
    return last_id


def position_cursor(cursor: str | None) -> int | None:
    """The log position of the last item of the previous page, in a list ordered by position
    (a blob's history). Exactly what ``encode_cursor([position])`` handed out: a position of
    the log (1 to 2**63 - 1), never a boolean, a text or a list."""
    if cursor is None:
        return None
    [position] = decode_cursor(cursor, 1)
    if not isinstance(position, int) or isinstance(position, bool) or position < 1:
        raise InvalidCursor("invalid cursor")
    return position


def clamp_limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))
