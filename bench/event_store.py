"""Event store throughput and load latency, next to raw JetStream baselines.

    python -m bench.event_store [--quick]

Starts its own nats-server (EmbeddedNats in a temp dir under /tmp, with the
embedded default ``sync_interval: always``: every ack is on disk) and measures:

(a) sequential appends through ``JetStreamEventStore.append`` on fresh
    aggregates (expected_position=0) and on one aggregate (expected positions
    increasing);
(b) the same with 50 concurrent writers (asyncio tasks), fresh aggregates;
(c) the baselines: raw ``js.publish`` of the same payload without headers,
    sequential and 50-concurrent (plus, for attribution, raw publish carrying
    the store's headers);
(d) aggregate load time (p50) at 10/100/1000 events with the store's batched
    Direct Get, next to one plain Direct Get per event and an ordered consumer
    per load. All three build ``Recorded`` envelopes, so they compare transport.

Throughput runs are repeated in interleaved rounds and the median is kept.
Rows are printed as a table and written to bench/results/event_store.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import api

from adapters.jetstream.event_store import JetStreamEventStore, subject_for, to_recorded
from adapters.jetstream.streams import apply_streams, load_stream_specs
from adapters.runtime.event_loop import run as run_event_loop
from adapters.runtime.nats_server import EmbeddedNats
from domain.recorded import NewEvent

NAME = "event_store"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CONCURRENCY = 50
AGG_TYPE = "BenchDoc"


# --------------------------------------------------------------------------- shared helpers (bench.http uses them)


def scratch_dir(prefix: str) -> Path:
    """A temp dir under /tmp that an unprivileged postgres user can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@contextlib.asynccontextmanager
async def own_nats() -> AsyncIterator[EmbeddedNats]:
    """A private nats-server (never the machine's 4222), removed afterwards."""
    root = scratch_dir("ink-bench-nats-")
    server = EmbeddedNats(root / "nats")
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def print_table(title: str, rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    """``columns`` = [(key, header)]; every row is printed on one line."""
    cells = [[h for _, h in columns]] + [[_fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    numeric = [all(_is_num(r.get(k)) for r in rows) for k, _ in columns]

    def line(cs: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cs, widths, numeric)).rstrip()

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for c in cells[1:]:
        print(line(c))
    sys.stdout.flush()


def _is_num(v: Any) -> bool:
    return v is None or isinstance(v, (int, float))


def write_results(name: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    doc = {
        "bench": name,
        "at": datetime.now(timezone.utc).isoformat(),
        "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()},
        **meta,
        "rows": rows,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------- the workload


def event_data() -> dict[str, Any]:
    """A typical small event body (~250 bytes of JSON)."""
    return {
        "document_id": "8c1e1f0a-4c5d-4f55-9a1b-6a3d2c1b0e9f",
        "title": "A benchmark document",
        "body": "lorem ipsum dolor sit amet " * 6,
        "tags": ["bench", "inkstream"],
        "revision": 1,
    }


def new_event() -> NewEvent:
    return NewEvent(
        type="BenchDoc.Edited",
        version=1,
        at=datetime.now(timezone.utc),
        data=event_data(),
        actor="bench-user",
    )


def store_headers(command_id: str, expected: int, stream: str) -> dict[str, str]:
    """What the store sends, for the 'raw publish + store headers' attribution row."""
    ev = new_event()
    return {
        "Nats-Msg-Id": command_id,
        "Nats-Expected-Stream": stream,
        "Nats-Expected-Last-Subject-Sequence": str(expected),
        "Ink-Type": ev.type,
        "Ink-Version": "1",
        "Ink-Class-Version": "1",
        "Ink-Command-Id": command_id,
        "Ink-At": ev.at.isoformat(),
        "Ink-Actor": "bench-user",
    }


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("nan")


class Bench:
    def __init__(self, nc: Client, n: int) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=10.0)
        self.store = JetStreamEventStore(nc, publish_timeout=10.0)
        self.stream = self.store.stream
        self.n = n
        self.payload = json.dumps(event_data()).encode()

    # -- (a) + (b): through the store

    async def store_seq_fresh(self) -> float:
        t = time.perf_counter()
        for _ in range(self.n):
            await self.store.append(AGG_TYPE, uuid.uuid4().hex, new_event(), 0, uuid.uuid4().hex)
        return _rate(self.n, time.perf_counter() - t)

    async def store_seq_one(self) -> float:
        agg, pos = uuid.uuid4().hex, 0
        t = time.perf_counter()
        for _ in range(self.n):
            pos = (await self.store.append(AGG_TYPE, agg, new_event(), pos, uuid.uuid4().hex)).position
        return _rate(self.n, time.perf_counter() - t)

    async def store_concurrent(self) -> float:
        async def writer(count: int) -> None:
            for _ in range(count):
                await self.store.append(AGG_TYPE, uuid.uuid4().hex, new_event(), 0, uuid.uuid4().hex)

        return await self._concurrently(writer)

    # -- (c): raw js.publish, the log's limit from Python

    async def raw_seq(self) -> float:
        t = time.perf_counter()
        for _ in range(self.n):
            await self.js.publish(subject_for("BenchRaw", uuid.uuid4().hex), self.payload)
        return _rate(self.n, time.perf_counter() - t)

    async def raw_concurrent(self) -> float:
        async def writer(count: int) -> None:
            for _ in range(count):
                await self.js.publish(subject_for("BenchRaw", uuid.uuid4().hex), self.payload)

        return await self._concurrently(writer)

    async def raw_seq_headers(self) -> float:
        t = time.perf_counter()
        for _ in range(self.n):
            cid = uuid.uuid4().hex
            await self.js.publish(
                subject_for("BenchRaw", uuid.uuid4().hex), self.payload, headers=store_headers(cid, 0, self.stream)
            )
        return _rate(self.n, time.perf_counter() - t)

    async def raw_concurrent_headers(self) -> float:
        async def writer(count: int) -> None:
            for _ in range(count):
                cid = uuid.uuid4().hex
                await self.js.publish(
                    subject_for("BenchRaw", uuid.uuid4().hex), self.payload, headers=store_headers(cid, 0, self.stream)
                )

        return await self._concurrently(writer)

    async def _concurrently(self, writer: Callable[[int], Awaitable[None]]) -> float:
        share = [self.n // CONCURRENCY + (1 if i < self.n % CONCURRENCY else 0) for i in range(CONCURRENCY)]
        t = time.perf_counter()
        await asyncio.gather(*(writer(k) for k in share))
        return _rate(self.n, time.perf_counter() - t)

    # -- (d): loading one aggregate

    async def fill_aggregate(self, size: int) -> tuple[str, list[int]]:
        """An aggregate of ``size`` events, interleaved with as many events of other aggregates."""
        agg, pos, seqs = uuid.uuid4().hex, 0, []
        for _ in range(size):
            pos = (await self.store.append(AGG_TYPE, agg, new_event(), pos, uuid.uuid4().hex)).position
            seqs.append(pos)
            await self.js.publish(subject_for("BenchNoise", uuid.uuid4().hex), self.payload)
        return agg, seqs

    async def load_store(self, agg: str, size: int) -> float:
        t = time.perf_counter()
        records = await self.store.load(AGG_TYPE, agg)
        elapsed = time.perf_counter() - t
        assert len(records) == size, (len(records), size)
        return elapsed

    async def load_per_event(self, agg: str, seqs: list[int]) -> float:
        """One plain Direct Get per event, by known sequence (the sequences are given for free)."""
        t = time.perf_counter()
        records = []
        for s in seqs:
            raw = await self.js.get_msg(self.stream, seq=s, direct=True)
            records.append(to_recorded(raw.subject or "", int(raw.seq or s), raw.headers, raw.data or b""))
        elapsed = time.perf_counter() - t
        assert len(records) == len(seqs)
        return elapsed

    async def load_ordered(self, agg: str, size: int) -> float:
        """An ordered push consumer on the aggregate's subject, created and torn down per load."""
        done = asyncio.get_running_loop().create_future()
        records = []

        async def on_msg(msg: Any) -> None:
            meta = msg.metadata
            records.append(to_recorded(msg.subject, meta.sequence.stream, msg.headers, msg.data))
            if meta.num_pending == 0 and not done.done():
                done.set_result(None)

        t = time.perf_counter()
        sub = await self.js.subscribe(
            subject_for(AGG_TYPE, agg),
            stream=self.stream,
            ordered_consumer=True,
            config=api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL),
            cb=on_msg,
        )
        await asyncio.wait_for(done, 10)
        await sub.unsubscribe()
        elapsed = time.perf_counter() - t
        assert len(records) == size, (len(records), size)
        return elapsed


async def _median_rounds(fns: dict[str, Callable[[], Awaitable[float]]], rounds: int) -> dict[str, float]:
    """Run every measurement once per round, interleaved, and keep each one's median."""
    got: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            got[key].append(await fn())
    return {k: statistics.median(v) for k, v in got.items()}


async def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 300 if quick else 2000
    rounds = 1 if quick else 3
    sizes = (10, 100, 1000)
    reps = {10: 15, 100: 10, 1000: 3} if quick else {10: 100, 100: 50, 1000: 15}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()

    async with own_nats() as server:
        nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.25)
        try:
            await apply_streams(nc, load_stream_specs())
            b = Bench(nc, n)
            # Warm-up: connections, stream files, the JIT-free Python paths.
            b.n = 100
            await b.store_seq_fresh()
            await b.raw_seq()
            b.n = n

            r = await _median_rounds(
                {
                    "raw_seq": b.raw_seq,
                    "raw_seq_h": b.raw_seq_headers,
                    "store_seq_fresh": b.store_seq_fresh,
                    "store_seq_one": b.store_seq_one,
                    "raw_conc": b.raw_concurrent,
                    "raw_conc_h": b.raw_concurrent_headers,
                    "store_conc": b.store_concurrent,
                },
                rounds,
            )

            def tput(case: str, key: str, base: str, base_case: str) -> dict[str, Any]:
                return {
                    "section": "append", "case": case, "n": n, "unit": "events/s",
                    "value": round(r[key], 1), "baseline_case": base_case, "baseline": round(r[base], 1),
                    "ratio": round(r[key] / r[base], 3),
                }  # fmt: skip

            rows += [
                tput("store.append seq, fresh aggs (exp=0)", "store_seq_fresh", "raw_seq", "raw js.publish seq, no headers"),
                tput("store.append seq, one agg (exp=pos)", "store_seq_one", "raw_seq", "raw js.publish seq, no headers"),
                tput(f"store.append {CONCURRENCY} writers, fresh aggs", "store_conc", "raw_conc", f"raw js.publish {CONCURRENCY} conc, no headers"),
                tput("raw js.publish seq + store headers", "raw_seq_h", "raw_seq", "raw js.publish seq, no headers"),
                tput(f"raw js.publish {CONCURRENCY} conc + store headers", "raw_conc_h", "raw_conc", f"raw js.publish {CONCURRENCY} conc, no headers"),
            ]  # fmt: skip

            for size in sizes:
                agg, seqs = await b.fill_aggregate(size)
                await b.load_store(agg, size)  # warm
                times: dict[str, list[float]] = {"store": [], "per_event": [], "ordered": []}
                for _ in range(reps[size]):
                    times["store"].append(await b.load_store(agg, size))
                    times["per_event"].append(await b.load_per_event(agg, seqs))
                    times["ordered"].append(await b.load_ordered(agg, size))
                p50 = {k: statistics.median(v) * 1000 for k, v in times.items()}
                for base, label in (("per_event", "1 Direct Get per event (seqs known)"), ("ordered", "ordered consumer per load")):
                    rows.append({
                        "section": "load", "case": f"store.load {size} events (batched Direct Get)", "n": reps[size],
                        "unit": "ms p50", "value": round(p50["store"], 3), "baseline_case": label,
                        "baseline": round(p50[base], 3), "ratio": round(p50["store"] / p50[base], 3),
                    })  # fmt: skip
        finally:
            await nc.drain()

    meta = {
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "nats": "own EmbeddedNats (sync_interval: always), temp dir under /tmp",
        "rounds": rounds,
        "note": "append rows: median of interleaved rounds; ratio = ours / baseline (>1 = ours faster for rates, slower for ms)",
    }
    print_table(
        f"bench.event_store — {'quick, ' if quick else ''}N={n}, {rounds} round(s), own nats-server (fsync always)",
        rows,
        [("case", "inkstream"), ("value", "value"), ("unit", "unit"), ("baseline", "baseline"),
         ("baseline_case", "baseline is"), ("ratio", "ours/base")],
    )  # fmt: skip
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.event_store", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (N=300, one round, few reps)")
    args = parser.parse_args(argv)
    run_event_loop(run(quick=args.quick))


if __name__ == "__main__":
    main()
