"""Seed Task 1: the servers are local processes isolated from development data, and
the test data (schemas from a fixtures file) is loaded through the API."""

from __future__ import annotations

import json

from adapters.client import InkstreamClient
from tests.support.fixtures import FIXTURES, Seeded
from tests.support.system import RunningSystem


async def test_every_fixture_schema_is_registered_and_readable(system: RunningSystem, seeded: Seeded) -> None:
    names = [s["name"] for s in json.loads(FIXTURES.read_text())["schemas"]]
    assert sorted(seeded.schema_ids) == sorted(names)
    async with InkstreamClient(system.base_url, token=seeded.owner_token) as ink:
        for name, schema_id in seeded.schema_ids.items():
            schema = await ink.get_schema(schema_id)
            assert schema.id == schema_id and schema.version == "1.0.0"


def test_the_session_servers_are_our_own_processes(system: RunningSystem) -> None:
    # never the machine's shared NATS on 4222: the session started its own from the wheel
    assert not system.running.nats_url.endswith(":4222")
    # a database of the run's own (fresh, named for the test session), never a development one
    assert system.running.database_url.rsplit("/", 1)[-1].startswith(("ink_test_", "inkstream"))
