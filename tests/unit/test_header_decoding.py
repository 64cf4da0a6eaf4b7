"""The log's faster header parser gives exactly the headers nats-py's own parser gives,
for every block, well-formed or not (non-UTF-8 bytes, odd whitespace, names with spaces)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client

from adapters.jetstream.decoding import parse_header_lines, stream_sequence

pieces = st.sampled_from([b"Ink-Type", b"Ink-At", b"a b", b" ", b"\t", b"\x0b", b"\x1c", b"\x85", b":", b": ",
                          b"\r\n", b"\r", b"\n", b"\xc3\xa9", b"\xff", b"\xe2\x80", b"value", b"2026-11-30T10:00:00+00:00",
                          b"\xa0", b"\x00", b"x"])


@settings(max_examples=2000, deadline=None)
@given(st.lists(pieces, max_size=30).map(b"".join))
def test_the_fast_parser_agrees_with_nats_py(raw: bytes) -> None:
    assert parse_header_lines(raw) == Client._parse_header_lines(raw)


def test_real_event_headers() -> None:
    raw = b"Ink-Type: Blob.Created\r\nInk-Version: 1\r\nInk-Actor: \xc3\xa9mile\r\nInk-At: 2026-11-30T10:00:00+00:00\r\n\r\n"
    assert parse_header_lines(raw) == Client._parse_header_lines(raw) == {
        "Ink-Type": "Blob.Created", "Ink-Version": "1", "Ink-Actor": "émile", "Ink-At": "2026-11-30T10:00:00+00:00"}


class _Msg:
    def __init__(self, reply: str) -> None:
        self.reply = reply


def test_the_stream_sequence_comes_from_the_reply_subject() -> None:
    assert stream_sequence(_Msg("$JS.ACK.INK.consumer_1.1.4242.17.1764496800000000000.9")) == 4242  # type: ignore[arg-type]
