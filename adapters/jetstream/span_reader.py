"""Reading a long, known stretch of the log (a rebuild) on a connection of its own.

nats-py turns every message into a ``Msg`` through several layers (header
parsing, an ordered consumer's bookkeeping, a queue and a callback per
message): in a rebuild that was most of the time (py-spy, docs/benchmarks.md).
Here a second, plain TCP connection to the server the client is connected to
receives a push consumer's messages, and frames are cut out of the byte
stream directly: each message costs one header split, one JSON parse and the
envelope.

* The consumer is an ephemeral push consumer from the span's first position,
  no acks, flow control on: the server pauses after a window of messages until
  its flow-control request is answered, and it is answered when the reader
  has taken in everything before it. So at most a window is in flight, and
  memory stays bounded whatever the span.
* Positions are checked one by one (the stream is never purged, so they are
  consecutive): any gap, an error from the server or a lost connection raises
  ``SpanBroken`` with the position reached, and the caller reads the rest
  another way.
* Only what the main connection does simply is done here: plain TCP, and the
  credentials of its CONNECT (user and password, a token). A TLS connection or
  nonce-signed credentials (nkeys, JWTs) make ``open_span`` answer None, and
  the caller uses an ordered consumer instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from nats.aio.client import Client
from nats.js import api

from adapters.jetstream.decoding import parse_header_lines
from domain.recorded import Recorded

_STATUS_LINE = b"NATS/1.0 "
_HEADER_LINE = len(b"NATS/1.0\r\n")
_READ = 1 << 20


class SpanBroken(Exception):
    """The raw read stopped before the span's end; ``reached`` is the last position taken."""

    def __init__(self, reached: int, reason: str) -> None:
        super().__init__(f"{reason} (after position {reached})")
        self.reached = reached


def usable(nc: Client) -> bool:
    """Plain TCP and credentials that need no fresh signature."""
    url = nc.connected_url
    if url is None or url.scheme not in ("nats", "") or nc.options.get("tls") is not None:
        return False
    info = getattr(nc, "_server_info", {}) or {}
    if info.get("tls_required") or "nonce" in info:
        return False
    return True


class _Frames:
    """Cuts protocol frames out of the bytes read; answers PINGs and flow-control requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, to_recorded: object) -> None:
        self._reader, self._writer = reader, writer
        self._buf = b""
        self._pos = 0
        self._to_recorded = to_recorded

    async def _fill(self) -> None:
        chunk = await self._reader.read(_READ)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buf = self._buf[self._pos:] + chunk if self._pos else self._buf + chunk
        self._pos = 0

    async def line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n", self._pos)
            if end >= 0:
                line = self._buf[self._pos:end]
                self._pos = end + 2
                return line
            await self._fill()

    async def messages(self, expected: int, end: int) -> AsyncIterator[list[Recorded]]:
        """Records from ``expected`` to ``end``, a buffer's worth at a time."""
        to_recorded = self._to_recorded
        write = self._writer.write
        broken: SpanBroken | None = None
        while expected <= end:
            out: list[Recorded] = []
            buf, pos = self._buf, self._pos
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                if buf.startswith(b"HMSG ", pos):
                    parts = buf[pos + 5:eol].split(b" ")
                    total = int(parts[-1])
                    start = eol + 2
                    if len(buf) < start + total + 2:
                        break  # the rest of this message is still on its way
                    hdr_len = int(parts[-2])
                    reply = parts[2] if len(parts) == 5 else b""
                    headers = buf[start:start + hdr_len]
                    data = buf[start + hdr_len:start + total]
                    pos = start + total + 2
                    if headers.startswith(_STATUS_LINE):  # 100: a heartbeat or a flow-control request
                        stalled = b"Nats-Consumer-Stalled:" in headers
                        if reply:
                            write(b"PUB " + reply + b" 0\r\n\r\n")
                        elif stalled:
                            value = parse_header_lines(headers[headers.find(b"\r\n") + 2:]).get(
                                "Nats-Consumer-Stalled", "")
                            if value:
                                write(b"PUB " + value.encode() + b" 0\r\n\r\n")
                        continue
                    tokens = reply.split(b".")
                    position = int(tokens[5]) if len(tokens) == 9 else int(tokens[7])
                    if position != expected:
                        broken = SpanBroken(expected - 1, f"position {position} where {expected} was due")
                        break
                    out.append(to_recorded(parts[0].decode(), position,  # type: ignore[operator]
                                           parse_header_lines(headers[_HEADER_LINE:]), data))
                    expected += 1
                    if expected > end:
                        break
                elif buf.startswith(b"MSG ", pos):  # no headers: not an event this store wrote
                    broken = SpanBroken(expected - 1, "a message without headers")
                    break
                elif buf.startswith(b"PING", pos):
                    write(b"PONG\r\n")
                    pos = eol + 2
                elif buf.startswith(b"-ERR", pos):
                    broken = SpanBroken(expected - 1, buf[pos:eol].decode(errors="replace"))
                    pos = eol + 2
                    break
                else:  # +OK, PONG, INFO
                    pos = eol + 2
            self._buf, self._pos = buf, pos
            if out:
                yield out
            if broken is not None:
                raise broken
            if expected <= end:
                await self._fill()


async def open_span(
    nc: Client, stream: str, start: int, end: int, to_recorded: object
) -> AsyncIterator[list[Recorded]] | None:
    """Positions ``start``..``end`` in batches on a raw connection; None when ``nc``'s
    connection cannot be reproduced simply (see the module's docstring)."""
    if not usable(nc):
        return None
    return _span(nc, stream, start, end, to_recorded)


async def _span(nc: Client, stream: str, start: int, end: int, to_recorded: object) -> AsyncIterator[list[Recorded]]:
    url = nc.connected_url
    assert url is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 4222, limit=_READ * 4)
    js = nc.jetstream()
    consumer: str | None = None
    frames = _Frames(reader, writer, to_recorded)
    reached = start - 1
    try:
        info = await asyncio.wait_for(frames.line(), 5)
        if not info.startswith(b"INFO "):
            raise SpanBroken(reached, "no INFO from the server")
        inbox = f"_INBOX.span.{uuid.uuid4().hex}"
        writer.write(nc._connect_command() + b"PING\r\n" + f"SUB {inbox} 1\r\nPING\r\n".encode())
        await writer.drain()
        for _ in range(2):  # both PONGs: connected, and the subscription is in place
            while True:
                line = await asyncio.wait_for(frames.line(), 5)
                if line.startswith(b"-ERR"):
                    raise SpanBroken(reached, line.decode(errors="replace"))
                if line == b"PONG":
                    break
        created = await js.add_consumer(stream, config=api.ConsumerConfig(
            deliver_subject=inbox, deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
            ack_policy=api.AckPolicy.NONE, flow_control=True, idle_heartbeat=5.0, mem_storage=True,
            num_replicas=1, inactive_threshold=30.0,
        ))
        consumer = created.name
        async for batch in frames.messages(start, end):
            reached = batch[-1].position
            yield batch
            await writer.drain()
    except SpanBroken:
        raise
    except (OSError, ConnectionError, asyncio.TimeoutError) as exc:
        raise SpanBroken(reached, f"{type(exc).__name__}: {exc}") from exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 2)
        if consumer is not None:
            with contextlib.suppress(Exception):
                await js.delete_consumer(stream, consumer)
