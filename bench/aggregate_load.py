"""Aggregate load: an aggregate of 100 events read back and rebuilt, beside the peer.

    python -m bench.aggregate_load [--quick] [--shared-pg]

Two cases, each beside the same case of the peer, in the same run:

* *cold*: what a command pays when the aggregate is in no cache: read every
  event of one aggregate from the log and replay them into the domain object.
  Ours: ``Repository.get`` on a fresh repository (batched Direct Get from
  JetStream, decode, ``EventCodec.rebuild``). The peer: the ``eventsourcing``
  library's own PostgreSQL persistence (``eventsourcing.postgres``, psycopg),
  ``Application.repository.get`` of the same ``Blob`` aggregate, no cache, no
  snapshots (as ours).
* *snapshot*: the same load with snapshots on both sides. Ours: a fresh
  ``Repository`` with the KV snapshot store, as ``inkstream`` runs it (a load
  that folded 32 events or more keeps a snapshot; the first load writes it,
  then each load reads it, checks its last event against the log and folds
  what came after: nothing here). Under 32 events no snapshot is kept, so the
  10-event row pays for asking. The peer: its snapshot store
  (``IS_SNAPSHOTTING_ENABLED``), a snapshot taken at the last version.
* *kept*: the same aggregate read again by the same process, which keeps it:
  ours, ``Repository.get`` from its read cache, checked against the log by one
  Direct Get of the events after the kept position; the peer, its aggregate
  cache with fast-forward (``AGGREGATE_CACHE_MAXSIZE``, one ``SELECT`` of the
  events after the cached version) and without the deep copy
  (``DEEPCOPY_FROM_AGGREGATE_CACHE=n``, its fastest setting; ours hands out
  the kept copy too). Both answers are as current as a full load.

Our aggregate's events are interleaved with as many events of another
aggregate. Sizes 10, 100 and 1,000 events; p50 and p99 over repeated loads.
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


async def _ours(nc: Any, store: Any, codec: Any, sizes: list[int], loads: int) -> dict[str, dict[int, list[float]]]:
    from adapters.jetstream.snapshots import JetStreamSnapshots, code_fingerprint
    from adapters.runtime.bootstrap import snapshotting
    from commands.repository import Repository
    from domain.blob import Blob

    snapshots = JetStreamSnapshots(nc, code_fingerprint())

    def fresh(case: str) -> Repository:
        if case == "snapshot":
            return Repository(store, codec, snapshots=snapshots, snapshotting=snapshotting(), snapshot_after=32)
        return Repository(store, codec)

    out: dict[str, dict[int, list[float]]] = {"cold": {}, "snapshot": {}, "kept": {}}
    for size in sizes:
        blob = _blob_with(size)
        noise = _blob_with(size)
        pos = noise_pos = 0
        for ev, other in zip(blob.collect_events(), noise.collect_events()):
            pos = (await store.append("blob", blob.id_str, codec.encode(ev, actor=OWNER), pos, uuid.uuid4().hex)).position
            noise_pos = (await store.append("blob", noise.id_str, codec.encode(other, actor=OWNER), noise_pos,
                                            uuid.uuid4().hex)).position  # fmt: skip
        kept = Repository(store, codec)
        for case in ("cold", "snapshot", "kept"):
            times = []
            for i in range(loads + 3):
                repo = kept if case == "kept" else fresh(case)
                t = time.perf_counter()
                saved = await repo.get(Blob, blob.id_str)
                times.append(time.perf_counter() - t)
                assert saved is not None and saved.aggregate.version == size, (saved, size)
                if case == "snapshot" and i == 0:
                    await snapshots.flush()  # the first load's snapshot is written in the background
                if case == "snapshot" and i > 0:
                    assert repo.snapshot_hits == (1 if size >= 32 else 0)
            out[case][size] = times[3:]  # the first loads warm the connection, the codec, the cache
        assert kept.read_hits == loads + 2
    return out


def _peer(dsn: str, sizes: list[int], loads: int) -> dict[str, dict[int, list[float]]]:
    from eventsourcing.application import Application

    class PeerBlobs(Application):
        pass

    cold = PeerBlobs(env=eventsourcing_env(dsn))
    snapshot = PeerBlobs(env={**eventsourcing_env(dsn), "IS_SNAPSHOTTING_ENABLED": "y"})
    kept = PeerBlobs(env={**eventsourcing_env(dsn), "AGGREGATE_CACHE_MAXSIZE": "1000",
                          "AGGREGATE_CACHE_FASTFORWARD": "y", "DEEPCOPY_FROM_AGGREGATE_CACHE": "n"})  # fmt: skip
    out: dict[str, dict[int, list[float]]] = {"cold": {}, "snapshot": {}, "kept": {}}
    try:
        for size in sizes:
            blob, noise = _blob_with(size), _blob_with(size)
            cold.save(blob, noise)
            snapshot.take_snapshot(blob.id)
            for case, app in (("cold", cold), ("snapshot", snapshot), ("kept", kept)):
                times = []
                for _ in range(loads + 3):
                    t = time.perf_counter()
                    loaded = app.repository.get(blob.id)
                    times.append(time.perf_counter() - t)
                    assert loaded.version == size
                out[case][size] = times[3:]
    finally:
        cold.close()
        snapshot.close()
        kept.close()
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
            ours = await _ours(nc, JetStreamEventStore(nc), EventCodec(aggregates()), sizes, loads)
        finally:
            await close_nats(nc)
        peer = await asyncio.to_thread(_peer, dsn, sizes, loads)

    def ms(values: list[float], p: float) -> float:
        return round(percentile(values, p) * 1000, 3)

    what = {"cold": ("Repository.get, nothing kept: Direct Get + rebuild", "repository.get, no cache"),
            "snapshot": ("Repository.get, nothing kept, KV snapshot after 32 folded",
                         "repository.get from its snapshot store"),
            "kept": ("Repository.get, kept: one Direct Get after it", "repository.get, cache + fast-forward")}
    rows = [
        {"case": f"{case}: {size:,} events ({what[case][0]})", "p50_ms": ms(ours[case][size], 50),
         "p99_ms": ms(ours[case][size], 99), "baseline_case": f"eventsourcing.postgres {what[case][1]}",
         "base_p50_ms": ms(peer[case][size], 50), "base_p99_ms": ms(peer[case][size], 99),
         "ratio": round(percentile(ours[case][size], 50) / percentile(peer[case][size], 50), 3)}
        for case in ("cold", "snapshot", "kept") for size in sizes
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
