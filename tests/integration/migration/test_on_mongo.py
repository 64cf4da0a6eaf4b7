"""A run on the system that answers from MongoDB (INKSTREAM_READ_STORE=mongo): the runner finds the blobs
of a bucket's tree there, run-once reads its runs there, and progress and revert read the same."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from adapters.client import ConflictError
from tests.integration.migration.helpers import profile_schema, profiles
from tests.support.sdk import fails, new_client
from tests.support.system import RunningSystem


@pytest.fixture
async def mongo_http(mongo_system: RunningSystem) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=mongo_system.base_url) as session:
        yield session


async def test_a_run_in_a_bucket_tree_and_its_revert_read_from_mongodb(mongo_system: RunningSystem,
                                                                       mongo_http: aiohttp.ClientSession) -> None:
    ink = await new_client(mongo_system.base_url, "on-mongo", session=mongo_http, backoff=0.05,
                           retry_rate_limited=True)
    name = await profile_schema(ink)
    top = await ink.create_bucket("top", "folder")
    sub = await ink.create_bucket("sub", "folder", parent_id=top.id)
    inside = await profiles(ink, name, 3, bucket_ids=[sub.id])
    outside = await profiles(ink, name, 2, start=3)
    run = await ink.wait_for_migration((await ink.request_migration(f"{name}@2.0.0", "1.0.0", bucket_id=top.id,
                                                                    dry_run=False)).id)
    assert (run.status, run.total, run.migrated) == ("completed", 3, 3)
    assert [m.id for m in (await ink.list_migrations()).items] == [run.id]
    with fails(ConflictError):
        await ink.request_migration(f"{name}@2.0.0", "1.0.0", bucket_id=top.id, dry_run=False)
    await ink.revert_migration(run.id)
    done = await ink.wait_for_migration(run.id)
    assert (done.status, done.reverted) == ("reverted", 3)
    for blob in inside + outside:
        now = await ink.get_blob(blob.id)
        assert (now.schema_id, now.data) == (blob.schema_id, blob.data)
