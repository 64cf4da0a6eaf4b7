"""Messages between the API process and a sandbox worker: a 4-byte big-endian
length, then that many bytes of JSON. Pipes carry them (the worker's stdin and
stdout), so no port or socket file is involved."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import orjson

_HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30  # a larger length means the stream is corrupt


class FrameError(Exception):
    """The other side sent something that is not a frame."""


def encode(message: dict[str, Any]) -> bytes:
    payload = orjson.dumps(message)
    return _HEADER.pack(len(payload)) + payload


async def read(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next message; ``asyncio.IncompleteReadError`` when the stream ends."""
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > MAX_FRAME:
        raise FrameError(f"a frame of {size} bytes")
    try:
        message = orjson.loads(await reader.readexactly(size))
    except orjson.JSONDecodeError as exc:
        raise FrameError(str(exc)) from None
    if not isinstance(message, dict):
        raise FrameError("a frame that is not an object")
    return message
