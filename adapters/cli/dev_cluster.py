"""``inkstream dev-cluster``: start ``DevCluster`` under DATA_DIR/cluster, print where everything listens,
stop it all on Ctrl-C (or SIGTERM).

While it runs, ``DATA_DIR/runtime.json`` names its NATS nodes and PostgreSQL, so
``inkstream replay|audit|export`` work beside it as they do beside ``up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from adapters.runtime import discovery
from adapters.runtime.dev_cluster import DevCluster
from adapters.runtime.processes import EmbeddedRuntimeError
from adapters.runtime.settings import Settings


async def dev_cluster_command(settings: Settings, port: int, apis: int, projectors: int, workers: int,
                              sync_always: bool) -> int:  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    root = settings.resolved_data_dir() / "cluster"
    cluster = DevCluster(root, apis=apis, projectors=projectors, workers=workers, api_port=port,
                         database_url=settings.database_url or None, sync_always=sync_always)
    print(f"starting the dev cluster under {root} ...", flush=True)
    starting = asyncio.create_task(cluster.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # Ctrl-C during start-up: start() stops what it started
        starting.cancel()
        with contextlib.suppress(BaseException):
            await starting
        return 130
    try:
        starting.result()
    except EmbeddedRuntimeError as exc:
        print(f"error: {exc}", flush=True)
        return 1
    try:
        discovery.record(settings, cluster.nats.url, cluster.database_url)
        print("inkstream dev-cluster is up:", flush=True)
        for line in cluster.describe():
            print("  " + line, flush=True)
        print("Ctrl-C stops them all.", flush=True)
        await stop.wait()
        print("stopping ...", flush=True)
    finally:
        discovery.forget(settings)
        stopping.cancel()
        await cluster.stop()
    print("stopped.", flush=True)
    return 0
