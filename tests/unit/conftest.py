"""Unit-test fixtures: the write side on fakes, wired by the real composition root."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.world import World


@pytest.fixture
def world() -> Iterator[World]:
    built = World()
    try:
        yield built
    finally:
        built.close()
