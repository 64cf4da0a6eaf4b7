"""Seed Task 9 (invalid schema data): rejected with `validation failed`, nothing written."""

from __future__ import annotations

import pytest

from adapters.client import InkstreamClient, ValidationFailedError
from tests.support.fixtures import Seeded
from tests.support.system import RunningSystem


async def test_invalid_data_for_a_strict_schema_is_refused_and_changes_nothing(
    system: RunningSystem, seeded: Seeded
) -> None:
    async with InkstreamClient(system.base_url) as ink:
        await ink.register(f"strict-{seeded.owner_token[-8:]}@example.com", "strict-password", "strict")
        before = await system.services.store.last_position()
        with pytest.raises(ValidationFailedError) as refused:
            await ink.create_blob({"invalid": "data"}, schema_id=seeded.schema_ids["strict-schema"])
        err = refused.value
        assert err.status == 422 and err.code == "validation_failed" and "validation failed" in str(err)
        assert {e["message"] for e in err.errors} >= {"title is required", "words is required"}
        assert await system.services.store.last_position() == before, "nothing may reach the log"
        assert (await ink.list_blobs()).items == []
