"""Loads into a long history: a refused keyed retry, a retry's answer, ``as_of``, a version.

    python -m bench.long_histories [--quick] [--shared-pg]

One blob of 10,000 events (2,000 with ``--quick``), each written by a keyed
command, on nats-server (fsync always); the ``commands`` projection rebuilt into
PostgreSQL (what ``inkstream replay`` does; a live projector keeps it as
current); one cold load of the blob first, which keeps its latest snapshot and
its rungs (as any load does). Timed, each on a fresh repository sharing the KV
snapshot bucket, against the same repository without the command index and
without rungs (what every such request did before them; the latest snapshot is
there for both, and is no help to a load before it):

* a key that never landed (the refusal stands): ours asks the index, then reads
  the events after its checkpoint (none here); the baseline reads the whole
  history for the key;
* the key of the blob's middle event (a retry whose first attempt landed): ours
  finds its position in the index and folds from the rung below it; the
  baseline searches the log for it, folding from the first event;
* ``as_of`` the middle event (``Repository.get(until_position=)``) and the
  middle version (``at_version``: a revert, a job's input): from the rung
  below, against a fold from the first event.

Rows go to bench/results/long_histories.json.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from typing import Any

from bench.common import bench_main
from bench.event_store import own_nats, percentile, print_table, write_results
from bench.http import database

NAME = "long_histories"
OWNER = str(uuid.uuid4())


def keyed() -> str:
    """A command id as an ``Idempotency-Key`` makes it."""
    return "idem-" + secrets.token_hex(20)


def _state(answer: Any) -> Any:
    """What an answer says, to check that both sides gave the same one."""
    aggregate = getattr(answer, "aggregate", answer)
    if aggregate is None:
        return None
    return (getattr(answer, "position", None),
            {k: v for k, v in vars(aggregate).items() if k != "_pending_events"})


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    from adapters.jetstream.connection import close_nats, connect_nats
    from adapters.jetstream.event_store import JetStreamEventStore
    from adapters.jetstream.snapshots import JetStreamSnapshots, code_fingerprint
    from adapters.jetstream.streams import apply_streams, load_stream_specs
    from adapters.postgres.migrations import migrate
    from adapters.postgres.pool import connect, create_pool
    from adapters.postgres.read_model import PostgresReadModel
    from adapters.postgres.rebuild import rebuild_all
    from adapters.runtime.bootstrap import aggregates, snapshotting
    from commands.repository import Context, Repository
    from domain.base import EventCodec
    from domain.blob import Blob
    from projections.commands import CommandsProjection

    events, rounds = (2_000, 10) if quick else (10_000, 20)
    started = time.perf_counter()
    codec = EventCodec(aggregates())
    async with own_nats() as nats_server, database(shared_pg) as (dsn, pg_desc):
        nc = await connect_nats(nats_server.url)
        try:
            await apply_streams(nc, load_stream_specs())
            store = JetStreamEventStore(nc)
            print(f"  writing one blob of {events:,} keyed events (setup) ...", flush=True)
            blob = Blob.create(OWNER, {"n": 0}, None, None, [])
            keys: list[str] = []
            positions: list[int] = []
            for n in range(events):
                if n:
                    blob.update({"n": n, "body": "lorem ipsum " * 8})
                (event,) = blob.collect_events()
                keys.append(keyed())
                appended = await store.append("blob", blob.id_str, codec.encode(event, actor=OWNER),
                                              positions[-1] if positions else 0, keys[-1])
                positions.append(appended.position)
            conn = await connect(dsn)
            try:
                await migrate(conn)
            finally:
                await conn.close()
            await rebuild_all([CommandsProjection()], dsn=dsn, store=store, codec=codec)
            pool = await create_pool(dsn)
            snapshots = JetStreamSnapshots(nc, code_fingerprint())
            try:
                index = PostgresReadModel(pool)

                def ours() -> Repository:
                    return Repository(store, codec, commands=index, snapshots=snapshots,
                                      snapshotting=snapshotting(), snapshot_after=32)

                def before() -> Repository:
                    return Repository(store, codec, snapshots=snapshots, snapshotting=snapshotting(),
                                      snapshot_after=32, rung_events=0)

                assert await ours().get(Blob, blob.id_str) is not None  # keeps the latest snapshot and the rungs
                await snapshots.flush()
                middle = events // 2
                middle_key, middle_position = keys[middle - 1], positions[middle - 1]

                async def absent(repo: Repository) -> object:
                    return await repo.replayed(Blob, blob.id_str, Context(actor=OWNER, command_id=keyed()))

                async def retried(repo: Repository) -> object:
                    return await repo.replayed(Blob, blob.id_str, Context(actor=OWNER, command_id=middle_key))

                async def as_of(repo: Repository) -> object:
                    return await repo.get(Blob, blob.id_str, until_position=middle_position)

                async def at_version(repo: Repository) -> object:
                    return await repo.at_version(Blob, blob.id_str, middle)

                cases = {"absent": absent, "retried": retried, "as_of": as_of, "at_version": at_version}
                timed: dict[tuple[str, str], list[float]] = {}
                answers: dict[tuple[str, str], object] = {}
                for _ in range(rounds):
                    for case, call in cases.items():
                        for side, make in (("ours", ours), ("base", before)):
                            repo = make()
                            t = time.perf_counter()
                            answer = await call(repo)
                            timed.setdefault((case, side), []).append(time.perf_counter() - t)
                            answers[(case, side)] = _state(answer)
                for case in cases:
                    assert answers[(case, "ours")] == answers[(case, "base")], case
                assert answers[("absent", "ours")] is None and answers[("retried", "ours")] is not None
            finally:
                await snapshots.close()
                await pool.close()
        finally:
            await close_nats(nc)

    def ms(case: str, side: str) -> float:
        return round(percentile(timed[(case, side)], 50) * 1000, 2)

    what = {"absent": ("a refused key that never landed", "the search of the whole log"),
            "retried": ("a retried key of the middle event", "the search of the log, folding from the first event"),
            "as_of": ("as_of the middle event", "a fold from the first event"),
            "at_version": ("at_version the middle version", "a fold from the first event")}
    rows = [{"case": f"{what[case][0]}, {events:,}-event blob", "p50_ms": ms(case, "ours"),
             "baseline_case": what[case][1], "base_p50_ms": ms(case, "base"),
             "ratio": round(ms(case, "ours") / ms(case, "base"), 4)} for case in what]
    meta = {"quick": quick, "events": events, "rounds": rounds, "postgres": pg_desc,
            "seconds": round(time.perf_counter() - started, 1),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    print_table(f"bench.long_histories: {rounds} rounds; PostgreSQL: {pg_desc}", rows,
                [("case", "Repository"), ("p50_ms", "index and rungs, p50 ms"),
                 ("baseline_case", "baseline is"), ("base_p50_ms", "base p50 ms"), ("ratio", "ours/base")])
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.long_histories", __doc__, "2,000 events and 10 rounds instead of 10,000 and 20", run,
               argv=argv)


if __name__ == "__main__":
    main()
