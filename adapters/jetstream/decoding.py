"""Decoding the log's messages faster than nats-py does by default, with the same results.

Reading the log (a rebuild, a projection catching up, a live client resuming)
spends most of its time turning NATS messages into events. Two costs of
nats-py's were worth replacing (py-spy, ``docs/benchmarks.md``):

* Header parsing: nats-py decodes and checks each header line byte by byte.
  ``parse_header_lines`` decodes the block once and splits it as text, and
  falls back to nats-py's own parser for a block that is not valid UTF-8, so
  every header dict is exactly what nats-py would have made. Whether a name is
  a valid header name is decided once per distinct name (the log's messages
  share a dozen), not once per line.
  ``install(nc)`` makes a client use it (an instance attribute shadowing
  nats-py's static method, nothing global).
* The stream sequence (the event's position): nats-py parses the whole reply
  subject into a metadata object with a timestamp; ``stream_sequence`` reads
  the one token.
"""

from __future__ import annotations

from functools import lru_cache

from nats.aio.client import Client
from nats.aio.msg import Msg

_ASCII_SPACE = " \t\n\r\x0b\x0c"  # what bytes.strip() strips
_nats_parse = Client._parse_header_lines


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """``Name: Value`` lines, as ``nats.aio.client.Client._parse_header_lines`` parses them."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return _nats_parse(raw)
    out: dict[str, str] = {}
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            key = _header_name(name)
            if key is not None:
                out[key] = value.strip(_ASCII_SPACE)
    return out


@lru_cache(maxsize=256)
def _header_name(name: str) -> str | None:
    """The header name before a line's colon, stripped; None for a line nats-py skips
    (a non-ASCII name, or whitespace inside it)."""
    key = name.strip(_ASCII_SPACE)
    if not key.isascii() or (key and key.split() != [key]):
        return None
    return key


def install(nc: Client) -> None:
    """Have ``nc`` parse message headers with ``parse_header_lines``."""
    nc._parse_header_lines = parse_header_lines  # type: ignore[method-assign]


def stream_sequence(msg: Msg) -> int:
    """The message's stream sequence, from its ``$JS.ACK`` reply subject."""
    reply = msg.reply
    if reply and reply.count(".") == 8 and reply.startswith("$JS.ACK."):  # the v1 form nats-server sends
        return int(reply.rsplit(".", 4)[1])
    return msg.metadata.sequence.stream
