"""A system of its own for the limits tests that could poison a shared log, or need other settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.servers import Database
from tests.support.system import RunningSystem, system_on_own_log

#: Small limits, so that a test reaches them with a few requests.
SMALL = {"max_chapter_bytes": 16 * 1024, "max_book_bytes": 64 * 1024, "max_chapters_per_book": 20,
         "max_schema_versions": 3}


@pytest.fixture(scope="module")
async def own_system(database: Database) -> AsyncIterator[RunningSystem]:
    """A log and a database of its own, with ``SMALL`` limits: if a fix regresses, only this log is poisoned."""
    async with system_on_own_log(database, **SMALL) as (system, _):
        yield system


@pytest.fixture
async def own_http(own_system: RunningSystem) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=own_system.base_url) as session:
        yield session
