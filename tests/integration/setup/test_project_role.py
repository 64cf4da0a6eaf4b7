"""``inkstream project --store mongo``, the Mongo projector role of compose.yaml: NATS and MongoDB only.

Two processes run the role against a NATS of the test's own and a MongoDB database
of the test's own, with no PostgreSQL configured: one leads each projection,
the other waits as a standby; what the log holds reaches MongoDB; when a
process stops (SIGTERM) it gives its leases up and the other carries on at
once; each process exits 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from adapters.mongo.client import open_mongo
from adapters.mongo.collections import CHECKPOINTS
from adapters.runtime.bootstrap import projections
from tests.support.sdk import new_client
from tests.support.servers import Database
from tests.support.system import system_on_own_log

INKSTREAM = Path(sys.executable).parent / "inkstream"


async def test_two_mongo_projector_processes_lead_and_stand_by_without_postgres(
    database: Database, mongo_url: str
) -> None:
    # A log of the test's own: the processes catch up with it alone, not with every earlier test's
    # events, which would make this test's time grow with the suite (into SecantusDB, which writes slowly).
    async with system_on_own_log(database, run_jobs=False) as (system, _):
        await _lead_and_stand_by(system.base_url, system.running.nats_url, mongo_url)


async def _lead_and_stand_by(base_url: str, nats_url: str, mongo_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKSTREAM_")}
    env.update(INKSTREAM_NATS_URL=nats_url, INKSTREAM_MONGO_URL=mongo_url, INKSTREAM_LOG_LEVEL="warning")
    procs = [await asyncio.create_subprocess_exec(str(INKSTREAM), "project", "--store", "mongo", env=env,
                                                  stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
             for _ in range(2)]
    mongo = await open_mongo(mongo_url)
    checkpoints = mongo.db[CHECKPOINTS]
    try:
        ink = await new_client(base_url, "role")
        blob = await ink.create_blob({"title": "to mongo"})
        await ink.close()

        async def projected(position: int) -> dict[str, dict]:
            # a wait, not a measure
            async with asyncio.timeout(60):
                while True:
                    docs = {d["_id"]: d async for d in checkpoints.find({})}
                    if len(docs) == len(projections()) and all(d["position"] >= position for d in docs.values()):
                        return docs
                    await asyncio.sleep(0.2)

        docs = await projected(blob.position)
        assert await mongo.db.blobs.find_one({"_id": blob.id}) is not None
        assert all(d["leader"] for d in docs.values())

        # One process stops (it leads some projections or all): it gives its leases up,
        # so the other takes over at once instead of when the leases (15 s) run out.
        procs[0].send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(procs[0].wait(), 30) == 0
        stopped = asyncio.get_running_loop().time()
        ink = await new_client(base_url, "role")
        later = await ink.create_blob({"title": "after one stopped"})
        await ink.close()
        await projected(later.position)
        assert asyncio.get_running_loop().time() - stopped < 10
        assert await mongo.db.blobs.find_one({"_id": later.id}) is not None
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(p.wait(), 30) for p in procs]
        errors = [(await p.stderr.read()).decode() for p in procs if p.stderr]
        await mongo.close()
    assert codes == [0, 0], errors
