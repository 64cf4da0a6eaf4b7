"""Identifiers.

Ids are UUIDv7 strings: time-ordered (index friendly, log friendly) and safe as a
subject token, because a subject token must never come raw from a request.
Python 3.11 has no ``uuid.uuid7``, so it is built here from RFC 9562.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from uuid import UUID

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def uuid7() -> UUID:
    """A UUIDv7: 48 bits of Unix milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return UUID(int=value)


def new_id() -> str:
    return str(uuid7())


def hashed_id(namespace: str, key: str) -> UUID:
    """A stable UUID (version 8) from a secret-free key, for subjects that must be
    unique by content (a user's normalised email) so that the log's
    expected-sequence-0 check makes "first writer wins" exact."""
    digest = bytearray(hashlib.sha256(f"{namespace}\x00{key}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    return UUID(bytes=bytes(digest))


def is_id(value: object) -> bool:
    """True for a canonical lowercase UUID string (the only form that reaches a subject)."""
    return isinstance(value, str) and bool(_UUID_RE.match(value))


def is_made_up(aggregate_id: str) -> bool:
    """Whether an aggregate id was made up when it was created (``new_id``, a UUIDv7), not derived
    from what it names (``hashed_id``, version 8: a user's email, a schema's name, a job's trigger)."""
    return is_id(aggregate_id) and aggregate_id[14] == "7"


def may_come_again(command_id: str | None) -> bool:
    """Whether a command id can be sent again: one derived from an ``Idempotency-Key``, a run's
    write or a bulk retry, not a UUID made up for one request (``new_id``). Only such ids are
    worth finding in the log, and only they are indexed (``projections/commands.py``)."""
    return bool(command_id) and not is_id(command_id)
