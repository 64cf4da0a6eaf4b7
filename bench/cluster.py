"""Commands/s on the three-node cluster with one and with two API processes, beside the single-node default.

    python -m bench.cluster [--quick]

In one run, one after the other:

* the single-node embedded default: ``inkstream up`` (one process: API and
  projectors, its own nats-server with ``sync_interval: always`` and its own
  PostgreSQL) as a child process;
* the dev cluster (``adapters/runtime/dev_cluster.py``, what ``inkstream
  dev-cluster`` runs): three nats-server nodes (every stream R3, synced on
  JetStream's schedule), its own PostgreSQL, two ``api`` and two ``project``
  processes; measured driving one API process, then both (the same cluster,
  interleaved rounds, the median round kept).

The load: 50 clients in a child process, each a user of its own sending
``POST /v1/buckets`` (one command, one event) back to back; with two API
processes the clients alternate between them. Rate limits are lifted but still
counted (on the cluster each command also adds to a shared counter). What
completes inside the measuring window counts. A last row measures the shared
limit counters alone: ``JetStreamCounters.add`` from 50 concurrent tasks on
distinct keys, on the cluster.

Rows go to bench/results/cluster.json. Every process shares the machine's
cores with the load generator, so these figures say how the pieces compare
here, not what separate machines would do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
import uuid
from typing import Any

import aiohttp

from adapters.runtime.dev_cluster import DevCluster, RoleProcess
from adapters.runtime.event_loop import run as run_event_loop
from adapters.runtime.processes import find_free_port
from bench.common import run_worker
from bench.event_store import percentile, print_table, scratch_dir, write_results

NAME = "cluster"
CLIENTS = 50
OPEN = "1000000000"
SETTINGS = {
    "INKSTREAM_RATE_LIMIT_PER_SECOND": OPEN, "INKSTREAM_RATE_LIMIT_BURST": OPEN,
    "INKSTREAM_ANONYMOUS_RATE_LIMIT_PER_SECOND": OPEN, "INKSTREAM_ANONYMOUS_RATE_LIMIT_BURST": OPEN,
    "INKSTREAM_SIGN_IN_RATE_PER_SECOND": OPEN, "INKSTREAM_SIGN_IN_BURST": OPEN,
    "INKSTREAM_LOG_LEVEL": "warning",
}  # fmt: skip


# --------------------------------------------------------------------------- the load (child process)


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    urls, tokens = spec["urls"], spec["tokens"]
    t0 = time.perf_counter()
    start, end = t0 + spec["warmup"], t0 + spec["warmup"] + spec["duration"]
    latencies: list[float] = []
    statuses: dict[str, int] = {}

    async def client(i: int, session: aiohttp.ClientSession) -> None:
        url, headers = f"{urls[i % len(urls)]}/v1/buckets", {"Authorization": f"Bearer {tokens[i]}"}
        while (began := time.perf_counter()) < end:
            try:
                async with session.post(url, json={"name": f"b{uuid.uuid4().hex[:8]}", "type": "library"},
                                        headers=headers) as r:
                    await r.read()
                    status = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status = 0
            done = time.perf_counter()
            if start <= done <= end:
                latencies.append(done - began)
                statuses[str(status)] = statuses.get(str(status), 0) + 1

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        await asyncio.gather(*(client(i, session) for i in range(len(tokens))))
    return {"rps": statuses.get("201", 0) / spec["duration"], "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000, "statuses": statuses}


async def _counter_worker(nats_url: str, seconds: float) -> float:
    import nats

    from adapters.jetstream.shared_limits import JetStreamCounters

    nc = await nats.connect(nats_url.split(","))
    try:
        counters = JetStreamCounters(nc, timeout=5)
        done, end = 0, time.perf_counter() + seconds

        async def adder(i: int) -> None:
            nonlocal done
            while time.perf_counter() < end:
                await counters.add(f"bench.{i}", 1)
                done += 1

        await asyncio.gather(*(adder(i) for i in range(CLIENTS)))
        return done / seconds
    finally:
        await nc.close()


# --------------------------------------------------------------------------- the systems


async def users(url: str, count: int) -> list[str]:
    async def one(http: aiohttp.ClientSession) -> str:
        body = {"email": f"c{uuid.uuid4().hex}@bench.example.com", "password": "bench-password-1", "username": "c"}
        async with http.post(f"{url}/v1/auth/register", json=body) as r:
            assert r.status == 201, await r.text()
            return str((await r.json())["token"])

    async with aiohttp.ClientSession() as http:
        return list(await asyncio.gather(*(one(http) for _ in range(count))))


async def measure(urls: list[str], tokens: list[str], warmup: float, duration: float) -> dict[str, Any]:
    result = await run_worker("bench.cluster", {"urls": urls, "tokens": tokens, "warmup": warmup, "duration": duration})
    bad = {k: v for k, v in result["statuses"].items() if k != "201"}
    if bad:
        print(f"  ! non-201 answers {bad}", flush=True)
    return result


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2]


async def single_node(rounds: int, warmup: float, duration: float) -> list[dict[str, Any]]:
    root = scratch_dir("ink-bench-up-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKSTREAM_")}
    env.update(SETTINGS, INKSTREAM_DATA_DIR=str(root), INKSTREAM_LOG_FORMAT="json")
    up = RoleProcess("up", 1, env, root / "up.log", find_free_port())
    try:
        up.start()
        await up.wait_ready()
        assert up.url
        tokens = await users(up.url, CLIENTS)
        return [await measure([up.url], tokens, warmup, duration) for _ in range(rounds)]
    finally:
        await up.stop()
        await _stop_embedded_postgres(root)
        shutil.rmtree(root, ignore_errors=True)


async def _stop_embedded_postgres(root: Any) -> None:
    """``up`` leaves its PostgreSQL running when it is the one that adopted it; stop it here."""
    from adapters.runtime.postgres_server import EmbeddedPostgres

    await EmbeddedPostgres(root / "pg").stop()


# --------------------------------------------------------------------------- the bench


async def run(quick: bool = False) -> list[dict[str, Any]]:
    from adapters.telemetry.logging import configure_logging

    configure_logging(level="error")
    warmup, duration, rounds = (1.0, 3.0, 1) if quick else (2.0, 6.0, 3)
    started = time.perf_counter()

    single = median(await single_node(rounds, warmup, duration))
    root = scratch_dir("ink-bench-cluster-")
    cluster = DevCluster(root, apis=2, projectors=2, workers=0, settings=SETTINGS, inherit_settings=False)
    one_api: list[dict[str, Any]] = []
    two_apis: list[dict[str, Any]] = []
    try:
        await cluster.start()
        urls = [api.url for api in cluster.apis if api.url]
        tokens = await users(urls[0], CLIENTS)
        for _ in range(rounds):
            one_api.append(await measure(urls[:1], tokens, warmup, duration))
            two_apis.append(await measure(urls, tokens, warmup, duration))
        counter_rate = await _counter_worker(cluster.nats.url, duration)
    finally:
        await cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    one, two = median(one_api), median(two_apis)

    def row(case: str, r: dict[str, Any]) -> dict[str, Any]:
        return {"case": case, "cmds_s": round(r["rps"], 1), "p50_ms": round(r["p50_ms"], 1),
                "p99_ms": round(r["p99_ms"], 1), "baseline_case": "inkstream up (single node, embedded)",
                "base_cmds_s": round(single["rps"], 1), "ratio": round(r["rps"] / single["rps"], 2),
                "statuses": r["statuses"]}  # fmt: skip

    rows = [
        row("inkstream up: one process, one nats-server (fsync always)", single),
        row("dev cluster (3 nodes, R3), 1 api process", one),
        row("dev cluster (3 nodes, R3), 2 api processes", two),
        {"case": f"shared-limit counter adds, {CLIENTS} concurrent keys, on the cluster", "cmds_s": round(counter_rate, 1),
         "baseline_case": "-"},
    ]  # fmt: skip
    meta = {
        "quick": quick, "seconds": round(time.perf_counter() - started, 1), "rounds": rounds,
        "clients": CLIENTS, "duration": duration, "warmup": warmup,
        "rounds_cmds_s": {"single": None, "one_api": [round(r["rps"], 1) for r in one_api],
                          "two_apis": [round(r["rps"], 1) for r in two_apis]},
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "note": "POST /v1/buckets from 50 clients (a user each) in a child process; median round",
    }  # fmt: skip
    print_table(
        f"bench.cluster — {'quick, ' if quick else ''}{rounds} round(s) of {duration:.0f} s, {CLIENTS} clients",
        rows,
        [("case", "system"), ("cmds_s", "cmds/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
         ("baseline_case", "baseline is"), ("base_cmds_s", "base/s"), ("ratio", "ours/base")],
    )  # fmt: skip
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round each")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_event_loop(_worker(json.loads(args.worker)))))
        sys.stdout.flush()
        return
    run_event_loop(run(quick=args.quick))


if __name__ == "__main__":
    main()
