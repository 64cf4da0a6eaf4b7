"""The integration areas that run once per read store (blob, bucket and book).

An area's ``conftest.py`` imports ``system`` from here: its tests then run
against the system answering from PostgreSQL, then against the one answering
from MongoDB (``INKSTREAM_READ_STORE=mongo``). Both are session fixtures that
start once (tests/conftest.py); this only chooses between them.
"""

from __future__ import annotations

import pytest

from tests.support.system import RunningSystem


@pytest.fixture(scope="session", params=["postgres", "mongo"])
def system(request: pytest.FixtureRequest) -> RunningSystem:
    return request.getfixturevalue("pg_system" if request.param == "postgres" else "mongo_system")
