"""A rebuild's fresh tables name their indexes and constraints apart, whatever the live tables are called."""

from __future__ import annotations

from adapters.postgres.rebuild import _temporary_name


def test_tables_sharing_a_long_start_get_names_of_their_own_within_postgres_limit() -> None:
    first, second = "x" * 45 + "_drafts", "x" * 45 + "_finals"
    names = {_temporary_name(table, i) for table in (first, second, "blobs") for i in range(3)}
    assert len(names) == 9
    assert all(len(name.encode()) <= 63 for name in names)
