"""Settings that could never work together are refused at start-up, with what to change."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.runtime.settings import Settings

MIB = 1024 * 1024


def test_a_write_burst_smaller_than_the_largest_body_is_refused() -> None:
    with pytest.raises(ValidationError, match="write_bytes_burst .* must be at least max_body_bytes"):
        Settings(max_body_bytes=4 * MIB, write_bytes_burst=2 * MIB)
    assert Settings(max_body_bytes=4 * MIB, write_bytes_burst=4 * MIB).write_bytes_burst == 4 * MIB
