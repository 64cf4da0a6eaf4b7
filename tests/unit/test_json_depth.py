"""Nesting measured on a body's bytes agrees with the parsed value's depth, strings and escapes included."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.http.json_depth import nests_deeper_than
from domain.errors import MAX_LISTED_ERRORS, storable_errors

tricky = st.text(st.sampled_from('[]{}"\\/ax\n\u00e9'), max_size=8)
values = st.recursive(
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), tricky),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky, inner, max_size=3),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(value=values, limit=st.integers(0, 8))
def test_the_measure_on_bytes_is_the_depth_of_the_value(value: Any, limit: int) -> None:
    assert nests_deeper_than(orjson.dumps(value), limit) == (depth(value) > limit)


def test_brackets_inside_strings_are_not_nesting() -> None:
    assert not nests_deeper_than(orjson.dumps({"a": "[" * 100 + '\\"{' * 100}), 1)
    assert nests_deeper_than(b"[" * 65 + b"]" * 65, 64) and not nests_deeper_than(b"[" * 64 + b"]" * 64, 64)


def test_a_thousand_bad_keys_in_one_object_are_one_error_and_hide_nothing_else() -> None:
    """A review's case: 1,001 NUL keys filled the list, so the other problems went unreported."""
    value = {"a": {f"k{i}\x00": 1 for i in range(MAX_LISTED_ERRORS + 1)}, "b": "\x00", "c": 2**70}
    assert [e.path for e in storable_errors(value, "/data")] == ["/data/a", "/data/b", "/data/c"]


def test_a_list_cut_short_and_joined_to_others_keeps_one_honest_note() -> None:
    """A review's case: a book's metadata with 1,500 NUL values (cut at 1,000 by the storable check)
    and a bad title besides were answered with two contradictory notes and a wrong count."""
    from domain.book import Book
    from domain.errors import ValidationFailed

    try:
        Book.create("u", "", {f"k{i}": "a\x00" for i in range(1_500)}, [])
    except ValidationFailed as exc:
        notes = [e for e in exc.errors if e.path == ""]
        assert len(notes) == 1 and notes[0].message.startswith(f"more than {MAX_LISTED_ERRORS} errors;"), notes
        assert len(exc.errors) <= MAX_LISTED_ERRORS + 1
    else:
        raise AssertionError("refused")
