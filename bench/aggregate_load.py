"""Aggregate load: an aggregate of 100 events read back and rebuilt, beside the peer.

    python -m bench.aggregate_load [--quick] [--shared-pg]

What a command pays when its aggregate is not in the write-side cache: read
every event of one aggregate from the log and replay them into the domain
object. Ours: ``Repository.get`` (batched Direct Get from JetStream, decode,
``EventCodec.rebuild``) on a log where the aggregate's events are interleaved
with as many events of other aggregates. The peer, in the same run: the
``eventsourcing`` library's own PostgreSQL persistence
(``eventsourcing.postgres``, psycopg) loading the same ``Blob`` aggregate,
100 events, with ``Application.repository.get`` (no snapshots, as ours).
Sizes 10, 100 and 1,000 events; p50 and p99 over repeated loads.
Rows go to bench/results/aggregate_load.json.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

from bench.common import bench_main
from bench.content import eventsourcing_env
from bench.event_store import own_nats, percentile, print_table, write_results
from bench.http import database

NAME = "aggregate_load"
OWNER = str(uuid.uuid4())


def _blob_with(size: int) -> Any:
    """A Blob holding ``size`` events (Created, then updates), nothing saved yet."""
    from domain.blob import Blob

    blob = Blob.create(OWNER, {"title": "draft", "n": 0}, None, None, [])
    for i in range(1, size):
        blob.update({"title": f"draft {i}", "n": i, "body": "lorem ipsum " * 8})
    return blob


async def _ours(store: Any, codec: Any, sizes: list[int], loads: int) -> dict[int, list[float]]:
    from commands.repository import Repository
    from domain.blob import Blob

    out: dict[int, list[float]] = {}
    for size in sizes:
        blob = _blob_with(size)
        noise = _blob_with(size)
        pos = noise_pos = 0
        for ev, other in zip(blob.collect_events(), noise.collect_events()):
            pos = (await store.append("blob", blob.id_str, codec.encode(ev, actor=OWNER), pos, uuid.uuid4().hex)).position
            noise_pos = (await store.append("blob", noise.id_str, codec.encode(other, actor=OWNER), noise_pos,
                                            uuid.uuid4().hex)).position  # fmt: skip
        repo = Repository(store, codec)
        times = []
        for _ in range(loads + 3):
            t = time.perf_counter()
            saved = await repo.get(Blob, blob.id_str)
            times.append(time.perf_counter() - t)
            assert saved is not None and saved.aggregate.version == size, (saved, size)
        out[size] = times[3:]  # the first loads warm the connection and the codec
    return out


def _peer(dsn: str, sizes: list[int], loads: int) -> dict[int, list[float]]:
    from eventsourcing.application import Application

    env = eventsourcing_env(dsn)

    class PeerBlobs(Application):
        pass

    app = PeerBlobs(env=env)
    out: dict[int, list[float]] = {}
    try:
        for size in sizes:
            blob, noise = _blob_with(size), _blob_with(size)
            app.save(blob, noise)
            times = []
            for _ in range(loads + 3):
                t = time.perf_counter()
                loaded = app.repository.get(blob.id)
                times.append(time.perf_counter() - t)
                assert loaded.version == size
            out[size] = times[3:]
    finally:
        app.close()
    return out


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    from adapters.jetstream.connection import close_nats, connect_nats
    from adapters.jetstream.event_store import JetStreamEventStore
    from adapters.jetstream.streams import apply_streams, load_stream_specs
    from adapters.runtime.bootstrap import aggregates
    from domain.base import EventCodec

    sizes, loads = [10, 100, 1000], (30 if quick else 200)
    started = time.perf_counter()
    async with own_nats() as nats_server, database(shared_pg) as (dsn, pg_desc):
        nc = await connect_nats(nats_server.url)
        try:
            await apply_streams(nc, load_stream_specs())
            ours = await _ours(JetStreamEventStore(nc), EventCodec(aggregates()), sizes, loads)
        finally:
            await close_nats(nc)
        peer = await asyncio.to_thread(_peer, dsn, sizes, loads)

    def ms(values: list[float], p: float) -> float:
        return round(percentile(values, p) * 1000, 3)

    rows = [
        {"case": f"load {size:,} events (Repository.get: Direct Get + rebuild)", "p50_ms": ms(ours[size], 50),
         "p99_ms": ms(ours[size], 99), "baseline_case": "eventsourcing.postgres repository.get",
         "base_p50_ms": ms(peer[size], 50), "base_p99_ms": ms(peer[size], 99),
         "ratio": round(percentile(ours[size], 50) / percentile(peer[size], 50), 3)}
        for size in sizes
    ]  # fmt: skip
    meta = {"quick": quick, "loads": loads, "postgres": pg_desc, "seconds": round(time.perf_counter() - started, 1),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    print_table(
        f"bench.aggregate_load — {loads} loads per size; PostgreSQL: {pg_desc}",
        rows,
        [("case", "inkstream"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("baseline_case", "baseline is"),
         ("base_p50_ms", "base p50"), ("base_p99_ms", "base p99"), ("ratio", "ours/base (p50)")],
    )  # fmt: skip
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.aggregate_load", __doc__, f"{30} loads per size instead of 200", run, argv=argv)


if __name__ == "__main__":
    main()
