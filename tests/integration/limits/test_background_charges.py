"""Work the system does for a user outside their requests is charged to that user.

A job's output counts against its owner's written bytes, as a body would (a 100-byte job request may
write half a megabyte), and the jobs a blob change triggers count as requests (the one trigger
dispatcher records them one by one for every user). A system of its own (its own log, jobs run) with
a 1 MiB burst of written bytes and a request burst of 30 refilled at one a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from domain.processor import MAX_TRIGGERED_PROCESSORS
from tests.support.servers import Database
from tests.support.sdk import new_client
from tests.support.system import RunningSystem, system_on_own_log
from tests.support.users import TestUser, new_user

KIB = 1024
TERMINAL = ("completed", "failed", "cancelled")


@pytest.fixture(scope="module")
async def charged(database: Database) -> AsyncIterator[RunningSystem]:
    async with system_on_own_log(database, write_bytes_per_second=16 * KIB, write_bytes_burst=1024 * KIB,
                                 rate_limit_per_second=1.0, rate_limit_burst=30) as (system, _):
        yield system


async def post(http: aiohttp.ClientSession, user: TestUser, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(path, json=body, headers=user.headers) as r:
        return r.status, await r.json()


async def finished_jobs(system: RunningSystem, owner_id: str, count: int, timeout: float = 60) -> list[Any]:
    """The owner's jobs once ``count`` of them have ended, read from the read model (no request spent)."""
    async with asyncio.timeout(timeout):
        while True:
            page = await system.services.reads.model.jobs(owner_id, None, None, 200, None)
            if len(page.items) >= count and all(j.status in TERMINAL for j in page.items):
                return page.items
            await asyncio.sleep(0.1)


async def test_job_outputs_count_against_their_owners_written_bytes(charged: RunningSystem) -> None:
    async with aiohttp.ClientSession(base_url=charged.base_url) as http:
        owner, other = await new_user(http, "outputs"), await new_user(http, "bystander")
        big = "function process(d) { return {t: 'x'.repeat(300000)}; }"  # 300 KB out of a tiny input
        status, processor = await post(http, owner, "/v1/processors",
                                       {"name": "grow", "type": "js-transform", "config": {"source": big}})
        assert status == 201, processor
        status, blob = await post(http, owner, "/v1/blobs", {"data": {"n": 1}})
        assert status == 201, blob
        for _ in range(4):  # 1.2 MB of outputs, from four requests of under 100 bytes
            status, job = await post(http, owner, "/v1/jobs", {"processor_id": processor["id"],
                                                                "input_blob_id": blob["id"]})
            assert status == 202, job
        jobs = await finished_jobs(charged, owner.user_id, 4)
        assert [j.status for j in jobs] == ["completed"] * 4
        status, problem = await post(http, owner, "/v1/blobs", {"data": {"n": 2}})
        assert status == 429 and "bytes written" in problem["detail"], problem
        status, _ = await post(http, other, "/v1/blobs", {"data": {"n": 3}})
        assert status == 201, "another user's bytes are their own"


async def test_blobs_a_migration_run_grows_count_against_its_owners_written_bytes(charged: RunningSystem) -> None:
    async with aiohttp.ClientSession(base_url=charged.base_url) as http:
        owner = await new_user(http, "migrator")
        name = f"grows-{owner.user_id[-8:]}"
        grow = "function migrate(d) { return {t: 'x'.repeat(300000)}; }"
        for version, migration in (("1.0.0", None), ("2.0.0", {"from_version": "1.0.0", "transform": grow})):
            body = {"name": name, "version": version, "schema": {"type": "object"}}
            status, answer = await post(http, owner, "/v1/schemas", {**body, **({"migration": migration} if migration
                                                                                 else {})})
            assert status == 201, answer
        for i in range(4):
            assert (await post(http, owner, "/v1/blobs", {"data": {"i": i}, "schema_id": f"{name}@1.0.0"}))[0] == 201
        status, run = await post(http, owner, "/v1/migrations", {"schema_id": f"{name}@2.0.0", "from_version": "1.0.0",
                                                                 "dry_run": False})
        assert status == 202, run
        async with asyncio.timeout(60):
            while (found := await charged.services.reads.model.migration(run["id"])) is None or \
                    found.status not in ("completed", "failed"):
                await asyncio.sleep(0.1)
        assert (found.status, found.migrated) == ("completed", 4)
        status, problem = await post(http, owner, "/v1/blobs", {"data": {"n": 5}})
        assert status == 429 and "bytes written" in problem["detail"], "1.2 MB written by one small request"


async def test_the_jobs_a_blob_change_triggers_count_as_its_writers_requests(charged: RunningSystem) -> None:
    """Three processors on one schema, each writing it: one blob runs the chain's 16 jobs and 19 refused
    (tests/integration/processor/test_triggers.py): 35 requests' worth of work for one request."""
    async with aiohttp.ClientSession(base_url=charged.base_url) as http:
        writer, other = await new_user(http, "fanout"), await new_user(http, "bystander")
        status, _ = await post(http, writer, "/v1/schemas", {"name": f"fan-{writer.user_id[-8:]}", "version": "1.0.0",
                                                              "schema": {"type": "object"}})
        assert status == 201
        same = f"fan-{writer.user_id[-8:]}@1.0.0"
        hop = "function process(d) { return {hop: (d.hop || 0) + 1}; }"
        for i in range(3):
            status, body = await post(http, writer, "/v1/processors", {
                "name": f"hop{i}", "type": "js-transform", "config": {"source": hop}, "output_schema": same,
                "triggers": [{"on": "blob.created", "schema_id": same}]})
            assert status == 201, body
        status, _ = await post(http, writer, "/v1/blobs", {"data": {"hop": 0}, "schema_id": same})
        assert status == 201  # five requests so far, of a burst of 30
        jobs = await finished_jobs(charged, writer.user_id, 35)
        assert len(jobs) == 35
        async with http.get("/v1/auth/me", headers=writer.headers) as r:
            assert r.status == 429, "the 35 jobs were charged to their writer"
            assert int(r.headers["Retry-After"]) >= 1
        async with http.get("/v1/auth/me", headers=other.headers) as r:
            assert r.status == 200


async def test_a_user_has_at_most_sixteen_processors_with_triggers(charged: RunningSystem) -> None:
    async with aiohttp.ClientSession(base_url=charged.base_url) as http:
        ink = await new_client(charged.base_url, "many", session=http)  # waits out the small rate limit
        auth = {"Authorization": f"Bearer {ink.token}"}
        echo = {"source": "function process(d) { return d; }"}
        bucket = await ink.create_bucket("watched", "folder")
        triggers = [{"on": "blob.created", "bucket_id": bucket.id}]
        made = [await ink.register_processor(f"p{i}", "js-transform", echo, triggers=triggers)
                for i in range(MAX_TRIGGERED_PROCESSORS)]
        plain = await ink.register_processor("plain", "js-transform", echo)  # without triggers: no limit
        message = (f"a user has at most {MAX_TRIGGERED_PROCESSORS} processors with triggers: remove the triggers "
                   "of one, or delete one, first")
        one_more = {"name": "one more", "type": "js-transform", "config": echo, "triggers": triggers}
        async with http.post("/v1/processors", json=one_more, headers=auth) as r:
            assert r.status == 422 and (await r.json())["errors"] == [{"path": "/triggers", "message": message}]
        async with http.patch(f"/v1/processors/{plain.id}", json={"triggers": triggers}, headers=auth) as r:
            assert r.status == 422 and (await r.json())["errors"] == [{"path": "/triggers", "message": message}]
        assert (await ink.get_processor(plain.id)).triggers == [], "refused: nothing changed"
        await ink.update_processor(made[0].id, triggers=[])  # one gives its triggers up
        changed = await ink.update_processor(plain.id, triggers=triggers)
        assert [t.model_dump() for t in changed.triggers] == [{**triggers[0], "schema_id": None}]
