"""A blob edited many times, then edited by processes that never saw it: every edit is kept.

Three API processes on one log and one database stand for a restart and a
second node. The second loads the long blob cold, folding its whole history,
and keeps a snapshot (``INK_SNAPSHOTS``); the third loads it from that
snapshot; the first, whose cached copy went stale meanwhile, reloads through
the snapshot too. Edits, versions, ETag preconditions and the read model all
agree with the log throughout.
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import nats
from nats.js.errors import NotFoundError

from adapters.client import InkstreamClient, PreconditionFailedError
from adapters.jetstream.snapshots import code_fingerprint
from tests.support.sdk import fails
from tests.support.servers import Database
from tests.support.system import RunningSystem, start_system

UNLIMITED = {"rate_limit_per_second": 1e6, "rate_limit_burst": 10**6, "write_bytes_per_second": 1e12,
             "write_bytes_burst": 10**12, "run_jobs": False}


async def test_edits_of_a_long_blob_survive_new_processes_loading_it_from_a_snapshot(
    nats_server: str, database: Database
) -> None:
    dsn = await database.new_database()
    systems: list[RunningSystem] = []
    try:
        for _ in range(3):
            systems.append(await start_system(nats_server, dsn, **UNLIMITED))
        first, second, third = (InkstreamClient(s.base_url, consistency="strong") for s in systems)
        await first.register(f"snap-{uuid.uuid4().hex[:12]}@example.com", "pw-" + uuid.uuid4().hex, "snap")
        second.token = third.token = first.token

        blob = await first.create_blob({"n": 0})
        for n in range(1, 40):
            await first.update_blob(blob.id, {"n": n})  # 40 events, all in the first process's cache

        edited = await second.update_blob(blob.id, {"n": 40, "by": "second"}, if_match=40)
        assert edited.version == 41 and systems[1].services.repo.snapshots_kept == 1
        subject = f"$KV.INK_SNAPSHOTS.{code_fingerprint()}.blob.{blob.id}"
        nc = await nats.connect(nats_server)
        try:
            async with asyncio.timeout(10):  # written in the background
                while True:
                    try:
                        kept = await nc.jetstream().get_msg("KV_INK_SNAPSHOTS", subject=subject, direct=True)
                        break
                    except NotFoundError:
                        await asyncio.sleep(0.05)
            assert kept.data and b'"version":40' in kept.data
        finally:
            await nc.close()

        edited = await third.update_blob(blob.id, {"n": 41, "by": "third"}, if_match=41)
        assert edited.version == 42 and systems[2].services.repo.snapshot_hits == 1
        with fails(PreconditionFailedError):
            await third.update_blob(blob.id, {"n": 0}, if_match=41)

        # The first process's cached copy (version 40) is stale: its command reloads and still lands on top.
        edited = await first.update_blob(blob.id, {"n": 42, "by": "first"})
        assert edited.version == 43 and edited.data == {"n": 42, "by": "first"}
        assert systems[0].services.repo.snapshot_hits == 1
        for ink in (first, second, third):
            shown = await ink.get_blob(blob.id)
            assert (shown.version, shown.data) == (43, {"n": 42, "by": "first"})
        history = await systems[0].services.store.load("blob", blob.id)
        assert [r.version for r in history] == list(range(1, 44))
        async with aiohttp.ClientSession() as http:  # what an operator sees of it
            async with http.get(f"{systems[2].base_url}/metrics") as r:
                metrics = await r.text()
        # The third process: its edit came from the snapshot; the If-Match refusal was decided on its cached
        # copy, then once more on the log's state (from the snapshot again) before it was refused.
        assert 'aggregate_loads_total{source="snapshot"} 2.0' in metrics
        assert 'aggregate_loads_total{source="write_cache"} 1.0' in metrics
        assert 'aggregate_loads_total{source="log"} 0.0' in metrics
        for ink in (first, second, third):
            await ink.close()
    finally:
        for system in systems:
            await system.stop()


async def test_a_long_blob_as_it_was_is_read_from_the_rung_below_each_position(
    nats_server: str, database: Database
) -> None:
    """``as_of`` on a blob edited many times, asked of a process that never loaded it: the first
    answer folds the log from the first event and keeps the rungs it passes (here every 16th
    version); every later one starts from the rung below its position. Each answer is the blob as
    it was there, whatever the order of the questions."""
    dsn = await database.new_database()
    systems: list[RunningSystem] = []
    try:
        for _ in range(2):
            systems.append(await start_system(nats_server, dsn, **UNLIMITED, snapshot_rung_events=16))
        writer, reader = (InkstreamClient(s.base_url, consistency="strong") for s in systems)
        await writer.register(f"rung-{uuid.uuid4().hex[:12]}@example.com", "pw-" + uuid.uuid4().hex, "rung")
        reader.token = writer.token
        blob = await writer.create_blob({"n": 0})
        at = {writer.last_position: 0}
        for n in range(1, 120):
            await writer.update_blob(blob.id, {"n": n})  # all in the writer's cache: no snapshot, no rung
            at[writer.last_position] = n
        last = max(at)
        asked = [last] + sorted(set(at) - {last}, key=lambda p: (p * 7919) % 1000)  # then an order of their own
        for position in asked:
            shown = await reader.get_blob(blob.id, as_of=position)
            assert (shown.version, shown.data) == (at[position] + 1, {"n": at[position]}), position
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{systems[1].base_url}/metrics") as r:
                metrics = await r.text()
        below_the_first_rung = sum(1 for p in asked[1:] if at[p] + 1 < 16)  # folded from the first event: < 16
        # the first question folded the whole log from its first event and kept rungs 1 to 7
        assert f'aggregate_loads_total{{source="log"}} {float(1 + below_the_first_rung)}' in metrics
        assert f'aggregate_loads_total{{source="rung"}} {float(len(asked) - 1 - below_the_first_rung)}' in metrics
        assert "snapshot_rungs_kept_total 7.0" in metrics
        for ink in (writer, reader):
            await ink.close()
    finally:
        for system in systems:
            await system.stop()
