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


def test_the_envelope_takes_each_header_into_its_own_field() -> None:
    """``to_recorded`` builds ``Recorded`` positionally (it runs for every event read): each
    header must still land in the field of its name."""
    from datetime import datetime, timezone

    from adapters.jetstream.event_store import to_recorded

    headers = {"Ink-Type": "Blob.Updated", "Ink-Version": "7", "Ink-Class-Version": "3", "Ink-Actor": "actor-1",
               "Ink-Command-Id": "command-1", "traceparent": "00-trace-span-01",
               "Ink-At": "2026-11-30T10:00:00.5+00:00"}
    record = to_recorded("ink.blob.id-1", 42, headers, b'{"title": "x"}')
    assert (record.position, record.aggregate_type, record.aggregate_id, record.type, record.version,
            record.class_version, record.actor, record.command_id, record.traceparent, record.at,
            record.data, record.headers, record.size) == (
        42, "blob", "id-1", "Blob.Updated", 7, 3, "actor-1", "command-1", "00-trace-span-01",
        datetime(2026, 11, 30, 10, 0, 0, 500000, tzinfo=timezone.utc), {"title": "x"}, headers, 14)
    bare = to_recorded("ink.user.id-2", 1, {"Ink-At": "2026-11-30T10:00:00+00:00"}, b"")
    assert (bare.type, bare.version, bare.class_version, bare.actor, bare.command_id, bare.traceparent,
            bare.data) == ("", 0, 1, None, None, None, {})
