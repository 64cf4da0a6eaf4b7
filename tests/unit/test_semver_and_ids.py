"""Semantic versions, schema ids and their SQL sort key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.ids import hashed_id
from domain.schema import SemVer, parse_schema_id, schema_aggregate_id


def test_semver_precedence_follows_semver_org() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"]  # fmt: skip
    parsed = [SemVer.parse(v) for v in ordered]
    assert sorted(reversed(parsed)) == parsed
    assert [p.pre_sort_key() for p in parsed] == sorted(p.pre_sort_key() for p in parsed[:8]) + [
        "~", "~", "~", "~"
    ]
    assert SemVer.parse("1.0.0+build.5").same_precedence(SemVer.parse("1.0.0"))
    assert str(SemVer.parse("1.2.3-rc.1+b.7")) == "1.2.3-rc.1+b.7"


@pytest.mark.parametrize("text", ["1", "1.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", "v1.0.0", "1.0.0 ", "a.b.c",
                                  "3\u0661.0.0", "1.\u0661.0", "1.0.0-\u0661", "\uff11.0.0"])
def test_semver_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        SemVer.parse(text)


_ident = st.one_of(st.integers(0, 10**6).map(str), st.from_regex(r"[0-9]*[a-zA-Z-][0-9a-zA-Z-]*", fullmatch=True))
_semvers = st.builds(
    lambda ma, mi, pa, pre: SemVer.parse(f"{ma}.{mi}.{pa}" + ("-" + ".".join(pre) if pre else "")),
    st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.lists(_ident, max_size=3),
)  # fmt: skip


@given(_semvers, _semvers)
def test_sql_sort_key_orders_like_semver(a: SemVer, b: SemVer) -> None:
    """(major, minor, patch, pre_sort_key) in byte order is semver precedence."""
    key_a = (a.major, a.minor, a.patch, a.pre_sort_key().encode())
    key_b = (b.major, b.minor, b.patch, b.pre_sort_key().encode())
    assert (key_a < key_b) == (a < b)
    assert (key_a == key_b) == a.same_precedence(b)


def test_schema_ids() -> None:
    assert parse_schema_id("book@1.2.0") == ("book", "1.2.0")
    assert parse_schema_id("book") == ("book", None)
    for bad in ["Book", "book@", "book@1", "-book", "bo.ok", "", "a" * 65, "x@1.0.0@2.0.0"]:
        with pytest.raises(ValueError):
            parse_schema_id(bad)
    assert schema_aggregate_id("book") == str(hashed_id("schema", "book"))


def test_ids_made_by_one_process_increase_in_the_order_they_were_made() -> None:
    """Lists are in id order, "creation order": thousands of ids made within a few milliseconds (more
    than the counter holds in one) still sort as they were made, and each is a valid UUIDv7."""
    from uuid import UUID

    from domain.ids import is_made_up, new_id

    made = [new_id() for _ in range(20_000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(is_made_up(i) and UUID(i).version == 7 and UUID(i).variant == "specified in RFC 4122" for i in made[:50])


def test_a_schema_id_longer_than_any_name_and_version_is_refused_before_any_pattern() -> None:
    """500 KB of version took 78 ms of regex on the event loop per request before anything else looked."""
    from domain.schema import MAX_SCHEMA_ID_LENGTH

    longest = "n" * 64 + "@1.0.0-" + "a" * (128 - 6)
    assert len(longest) == MAX_SCHEMA_ID_LENGTH and parse_schema_id(longest)[0] == "n" * 64
    with pytest.raises(ValueError, match="at most 193 characters"):
        parse_schema_id(longest + "a")
    with pytest.raises(ValueError):
        parse_schema_id("n@1.0.0-" + "a" * 500_000)
