"""The integration areas that run once per read store (blob, bucket and book).

An area's ``conftest.py`` imports ``system`` from here: its tests then run
against the system answering from PostgreSQL, then against the one answering
from MongoDB (``INKSTREAM_READ_STORE=mongo``). Both are session fixtures that
start once (tests/conftest.py); this only chooses between them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.mongo import MongoServer
from tests.support.servers import Database
from tests.support.system import RunningSystem, system_on_own_log


@pytest.fixture(scope="session", params=["postgres", "mongo"])
def system(request: pytest.FixtureRequest) -> RunningSystem:
    return request.getfixturevalue("pg_system" if request.param == "postgres" else "mongo_system")


@pytest.fixture(scope="module", params=["postgres", "mongo"], name="system")
async def own_log_system(request: pytest.FixtureRequest, database: Database,
                         mongo_server: MongoServer) -> AsyncIterator[RunningSystem]:
    """The same choice of read store, on a log of the module's own: for tests that write tens of
    megabytes, which every system started later on the session's log would replay from position 0
    (eight projections at once), and which the MongoDB-answering session system would project into
    SecantusDB. A module imports it (``from tests.support.stores import own_log_system``) to override
    ``system``."""
    overrides: dict[str, Any] = {}
    if request.param == "mongo":
        overrides = {"mongo_url": mongo_server.database_url(), "read_store": "mongo"}
    async with system_on_own_log(database, **overrides) as (running, _):
        yield running
