"""Keyed retries refused on a long aggregate: the command index against the search of the log.

    python -m bench.keyed_retries [--quick] [--shared-pg]

A keyed command (``Idempotency-Key``) that the domain refuses (a stale
``If-Match``) is answered like its first attempt when the log holds that attempt,
so the repository must find the aggregate's event with the command id
(``Repository.replayed``). One blob of 2,000 events (10,000 without ``--quick``),
each written by a keyed command, on nats-server (fsync always); the ``commands``
projection rebuilt into PostgreSQL (what ``inkstream replay`` does; a live
projector keeps it as current). Timed, on fresh repositories (nothing kept):

* a key that never landed (the refusal stands): ours asks the index, then reads
  the events after its checkpoint (none here); the baseline is the search of the
  whole history that every such refusal made before the index;
* the key of the blob's middle event (a retry whose first attempt landed): ours
  finds its position in the index and folds the blob up to it; the baseline
  searches the log for it and folds as it goes. Both fold half the history: the
  answer is the blob as that attempt left it.

Rows go to bench/results/keyed_retries.json.
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

NAME = "keyed_retries"
OWNER = str(uuid.uuid4())


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    from adapters.jetstream.connection import close_nats, connect_nats
    from adapters.jetstream.event_store import JetStreamEventStore
    from adapters.jetstream.streams import apply_streams, load_stream_specs
    from adapters.postgres.migrations import migrate
    from adapters.postgres.pool import connect, create_pool
    from adapters.postgres.read_model import PostgresReadModel
    from adapters.postgres.rebuild import rebuild_all
    from adapters.runtime.bootstrap import aggregates
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
            position = 0
            for n in range(events):
                if n:
                    blob.update({"n": n, "body": "lorem ipsum " * 8})
                (event,) = blob.collect_events()
                keys.append("idem-" + secrets.token_hex(20))
                appended = await store.append("blob", blob.id_str, codec.encode(event, actor=OWNER), position,
                                              keys[-1])
                position = appended.position
            conn = await connect(dsn)
            try:
                await migrate(conn)
            finally:
                await conn.close()
            await rebuild_all([CommandsProjection()], dsn=dsn, store=store, codec=codec)
            pool = await create_pool(dsn)
            try:
                index = PostgresReadModel(pool)
                middle = keys[len(keys) // 2]
                timed: dict[tuple[str, str], list[float]] = {}
                for _ in range(rounds):
                    for case, key in (("absent", "idem-" + secrets.token_hex(20)), ("middle", middle)):
                        for side, commands in (("ours", index), ("base", None)):
                            repo = Repository(store, codec, commands=commands)
                            t = time.perf_counter()
                            found = await repo.replayed(Blob, blob.id_str, Context(actor=OWNER, command_id=key))
                            timed.setdefault((case, side), []).append(time.perf_counter() - t)
                            assert (found is None) == (case == "absent")
            finally:
                await pool.close()
        finally:
            await close_nats(nc)

    def ms(case: str, side: str) -> float:
        return round(percentile(timed[(case, side)], 50) * 1000, 2)

    what = {"absent": "a key that never landed (refused)", "middle": "the key of the middle event (answered)"}
    rows = [{"case": f"{what[case]}, {events:,}-event blob", "p50_ms": ms(case, "ours"),
             "baseline_case": "the search of the log (before the index)", "base_p50_ms": ms(case, "base"),
             "ratio": round(ms(case, "ours") / ms(case, "base"), 4)} for case in ("absent", "middle")]
    meta = {"quick": quick, "events": events, "rounds": rounds, "postgres": pg_desc,
            "seconds": round(time.perf_counter() - started, 1),
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    print_table(f"bench.keyed_retries: {rounds} rounds; PostgreSQL: {pg_desc}", rows,
                [("case", "Repository.replayed"), ("p50_ms", "with the index, p50 ms"),
                 ("baseline_case", "baseline is"), ("base_p50_ms", "base p50 ms"), ("ratio", "ours/base")])
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.keyed_retries", __doc__, "2,000 events and 10 rounds instead of 10,000 and 20", run,
               argv=argv)


if __name__ == "__main__":
    main()
