"""The fast header parse answers exactly what nats-py's own parse answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client

from adapters.jetstream.headers import FastHeaderClient, parse_header_lines

_pieces = st.sampled_from([b"Nats-Msg-Id", b"Ink-Type", b":", b": ", b"\r\n", b" ", b"\t", b"\x1c", b"\xe2\x80\x83",
                           b"\xff", b"caf\xc3\xa9", b"a b", b"", b"value", b"12345"])  # fmt: skip


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_any_bytes_parse_as_nats_py_parses_them(raw: bytes) -> None:
    assert parse_header_lines(raw) == Client._parse_header_lines(raw)


@settings(max_examples=500)
@given(st.lists(_pieces, max_size=30).map(b"".join))
def test_header_like_blocks_parse_as_nats_py_parses_them(raw: bytes) -> None:
    assert parse_header_lines(raw) == Client._parse_header_lines(raw)


def test_the_client_uses_it() -> None:
    block = b"Nats-Msg-Id: abc\r\nInk-Type: Blob.Created\r\n\r\n"
    assert FastHeaderClient._parse_header_lines(block) == {"Nats-Msg-Id": "abc", "Ink-Type": "Blob.Created"}
    assert FastHeaderClient._parse_header_lines is parse_header_lines
