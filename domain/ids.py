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


class _Uuid7Clock:
    """The millisecond and 12-bit counter of the last UUIDv7 this process made (RFC 9562, 6.2, method 1).

    Lists are in id order ("creation order"); with random bits after the millisecond, two ids made in
    the same millisecond (a book and its chapters, a burst of creations) compared at random, so a list
    could show them in another order than they were made. The counter starts at a random value in the
    lower half of its range each new millisecond and counts up within it; past its top it borrows the
    next millisecond. One per process: ids made by different processes in one millisecond still
    compare at random, which nothing can order."""

    def __init__(self) -> None:
        self.ms = 0
        self.counter = 0

    def next(self, seed: int) -> tuple[int, int]:
        """(milliseconds, counter) for the next id; ``seed``: random bits to start a new millisecond's counter."""
        ms = time.time_ns() // 1_000_000
        if ms > self.ms:
            self.ms, self.counter = ms, seed & 0x7FF
        elif self.counter < 0xFFF:
            self.counter += 1
        else:
            self.ms, self.counter = self.ms + 1, 0
        return self.ms, self.counter


_CLOCK = _Uuid7Clock()


def uuid7() -> UUID:
    """A UUIDv7: 48 bits of Unix milliseconds, a 12-bit counter (``_Uuid7Clock``), then 62 random bits."""
    rand = int.from_bytes(os.urandom(10), "big")
    ms, counter = _CLOCK.next(rand >> 64)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
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
