"""Jobs: js-transform end to end with 1 and 2 runner processes, beside the transform alone in the sandbox.

    python -m bench.jobs [--quick] [--shared-pg]

Starts its own nats-server and PostgreSQL (``--shared-pg``: a throwaway
database on 127.0.0.1:5432). The API and the projectors run in this process
(``start_system``, no runner); runners are ``inkstream work`` child processes
(concurrency 8 each, the per-user limit lifted: one bench user owns every
job); the load comes from another child process (``--worker``).

(a) throughput, with 1 and then 2 runner processes, two ways; times are
    taken from the jobs read model (``created_at`` is the ``Requested``
    event's time, ``started_at`` the first ``Started``, ``finished_at`` the
    ``Completed`` one's):
    * drain: N jobs requested while no runner runs, then the runners start;
      jobs/s = N / (first start → last completion): what the runners can do;
    * end to end: N job requests sent as fast as 32 concurrent clients can
      while the runners run; jobs/s = N / (first request → last completion);
(b) latency: requests sent open-loop at half the rate (a) measured for that
    many runners, p50/p99 of request → completion, same timestamps;
(c) the limit: the same transform on the same document called directly in
    the sandbox in a loop (one call at a time, then 8 at once, as a runner
    runs 8 jobs), no log, no HTTP.
Rows go to bench/results/jobs.json.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.common import bench_main, run_worker
from bench.event_store import own_nats, percentile, print_table, scratch_dir, write_results
from bench.http import database

NAME = "jobs"
CONCURRENCY = 32
RUNNER_CONCURRENCY = 8
TRANSFORM = """function process(data) {
  var words = data.body.split(/\\s+/).filter(function (w) { return w.length > 0; });
  return {title: data.title.toUpperCase(), words: words.length,
          longest: words.reduce(function (a, w) { return w.length > a.length ? w : a; }, "")};
}"""
INPUT = {"title": "A chapter", "body": "It was a bright cold day in April, and the clocks were striking thirteen. " * 4}
INKSTREAM = Path(sys.executable).parent / "inkstream"


# -- the load (a child process) ------------------------------------------------------------------


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {spec['token']}"}
    body = {"processor_id": spec["processor_id"], "input_blob_id": spec["blob_id"]}
    errors: list[str] = []
    sent = 0
    async with aiohttp.ClientSession(base_url=spec["url"], connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one() -> None:
            nonlocal sent
            async with http.post("/v1/jobs", json=body, headers=headers) as r:
                if r.status != 202 and len(errors) < 5:
                    errors.append(f"{r.status} {(await r.read())[:200]!r}")
                sent += r.status == 202

        if spec.get("rate"):  # open loop: one request every 1/rate s, whatever the answers do
            interval = 1 / spec["rate"]
            start = time.perf_counter()
            tasks = []
            for i in range(spec["count"]):
                delay = start + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)
        else:
            gate = asyncio.Semaphore(CONCURRENCY)

            async def gated() -> None:
                async with gate:
                    await one()

            await asyncio.gather(*(gated() for _ in range(spec["count"])))
    return {"sent": sent, "errors": errors}


# -- runners ---------------------------------------------------------------------------------------


def _spawn_runner(nats_url: str, dsn: str, root: Path, index: int) -> subprocess.Popen[bytes]:
    from tests.support.system import TEST_SECRET, free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("INKSTREAM_")}
    env.update(
        INKSTREAM_NATS_URL=nats_url, INKSTREAM_DATABASE_URL=dsn, INKSTREAM_HTTP_PORT=str(free_port()),
        INKSTREAM_DATA_DIR=str(root), INKSTREAM_JWT_SECRET=TEST_SECRET, INKSTREAM_LOG_LEVEL="error",
        INKSTREAM_LOG_FORMAT="json", INKSTREAM_JOB_CONCURRENCY=str(RUNNER_CONCURRENCY),
        INKSTREAM_JOB_MAX_RUNNING_PER_USER="100000",
    )  # fmt: skip
    log = (root / f"runner-{index}.log").open("ab")
    return subprocess.Popen([str(INKSTREAM), "work"], env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _timings(dsn: str, processor_id: str, expected: int, timeout: float) -> list[tuple[float, float, float]]:
    """(created, started, finished) epoch seconds of each job, once ``expected`` of them completed."""
    conn = await asyncpg.connect(dsn)
    deadline = time.monotonic() + timeout
    try:
        while True:
            rows = await conn.fetch(
                "SELECT extract(epoch FROM created_at) AS c, extract(epoch FROM started_at) AS s,"
                " extract(epoch FROM finished_at) AS f, status FROM jobs WHERE processor_id = $1", processor_id,
            )  # fmt: skip
            done = [(float(r["c"]), float(r["s"]), float(r["f"])) for r in rows if r["status"] == "completed"]
            if len(done) >= expected:
                return done
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(done)} of {expected} jobs completed within {timeout} s")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def _new_processor(http: aiohttp.ClientSession, headers: dict[str, str]) -> str:
    async with http.post("/v1/processors", headers=headers,
                         json={"name": "bench", "type": "js-transform", "config": {"source": TRANSFORM}}) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["id"])


# -- the limit: the sandbox alone ---------------------------------------------------------------------


async def sandbox_limit(count: int) -> dict[str, float]:
    """The sandbox as a runner has it: a pool with one worker per job it runs at once."""
    from adapters.sandbox.pool import SandboxPool

    sandbox = SandboxPool(workers=RUNNER_CONCURRENCY, timeout_ms=30_000, max_memory_mb=64)
    await sandbox.start()
    try:
        await sandbox.call(TRANSFORM, "process", INPUT)
        began = time.perf_counter()
        for _ in range(count):
            await sandbox.call(TRANSFORM, "process", INPUT, timeout_ms=30_000, max_memory_mb=64)
        serial = count / (time.perf_counter() - began)
        gate = asyncio.Semaphore(RUNNER_CONCURRENCY)

        async def one() -> None:
            async with gate:
                await sandbox.call(TRANSFORM, "process", INPUT, timeout_ms=30_000, max_memory_mb=64)

        began = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        concurrent = count / (time.perf_counter() - began)
    finally:
        await sandbox.close()
    return {"serial": serial, "concurrent": concurrent}


# -- the bench -------------------------------------------------------------------------------------------


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    from adapters.telemetry.logging import configure_logging
    from tests.support.system import start_system
    from tests.support.users import new_user

    configure_logging(level="error")
    count = 300 if quick else 2000
    latency_seconds = 5 if quick else 20
    started = time.perf_counter()
    overrides = {
        "rate_limit_per_second": 1e9, "rate_limit_burst": 10**9,
        "anonymous_rate_limit_per_second": 1e9, "anonymous_rate_limit_burst": 10**9, "sign_in_rate_per_second": 1e9, "sign_in_burst": 10**9, "log_level": "error",
    }  # fmt: skip
    limit = await sandbox_limit(count)
    results: dict[int, dict[str, Any]] = {}
    async with own_nats() as nats_server, database(shared_pg) as (dsn, pg_desc):
        assert nats_server.url
        print(f"bench.jobs: PostgreSQL = {pg_desc}", flush=True)
        system = await start_system(nats_server.url, dsn, run_jobs=False, **overrides)
        root = scratch_dir("ink-bench-jobs-")
        try:
            async with aiohttp.ClientSession(base_url=system.base_url) as http:
                user = await new_user(http, "bench")
                async with http.post("/v1/blobs", json={"data": INPUT}, headers=user.headers) as r:
                    blob_id = (await r.json())["id"]
                spec = {"url": system.base_url, "token": user.token, "blob_id": blob_id}
                for runners in (1, 2):
                    queued = await _new_processor(http, user.headers)
                    waiting = await run_worker("bench.jobs", {**spec, "processor_id": queued, "count": count})
                    procs = [_spawn_runner(nats_server.url, dsn, root, i) for i in range(runners)]
                    try:
                        times = await _timings(dsn, queued, count, timeout=600)
                        drain = count / (max(f for _, _, f in times) - min(s for _, s, _ in times))
                        processor = await _new_processor(http, user.headers)
                        burst = await run_worker("bench.jobs", {**spec, "processor_id": processor, "count": count})
                        times = await _timings(dsn, processor, count, timeout=600)
                        rate = count / (max(f for _, _, f in times) - min(c for c, _, _ in times))
                        processor = await _new_processor(http, user.headers)
                        n = max(int(rate / 2 * latency_seconds), 20)
                        paced = await run_worker("bench.jobs", {**spec, "processor_id": processor, "count": n,
                                                                "rate": rate / 2})
                        lat = [f - c for c, _, f in await _timings(dsn, processor, n, timeout=600)]
                        results[runners] = {"drain": drain, "rate": rate, "latencies": lat, "paced": n,
                                            "errors": waiting["errors"] + burst["errors"] + paced["errors"]}
                    finally:
                        _stop(procs)
        finally:
            await system.stop()

    rows = []
    for runners, r in results.items():
        rows.append({
            "case": f"js-transform, {runners} runner process{'es' * (runners > 1)}",
            "drain_s": round(r["drain"], 1),
            "jobs_s": round(r["rate"], 1),
            "p50_ms": round(percentile(r["latencies"], 50) * 1000, 1),
            "p99_ms": round(percentile(r["latencies"], 99) * 1000, 1),
            "at_s": round(r["rate"] / 2, 1),
            "baseline_case": "the transform alone in the sandbox, a loop / 8 at once",
            "base_s": f"{limit['serial']:.0f} / {limit['concurrent']:.0f}",
            "ratio": round(r["drain"] / limit["concurrent"], 3),
            "errors": r["errors"],
        })  # fmt: skip
    meta = {
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "jobs_per_burst": count,
        "sandbox_serial_calls_s": round(limit["serial"], 1),
        "sandbox_concurrent_calls_s": round(limit["concurrent"], 1),
        "runner_concurrency": RUNNER_CONCURRENCY,
        "nats": "own EmbeddedNats (sync_interval: always)",
        "postgres": pg_desc,
        "load": f"separate process; burst: {CONCURRENCY} concurrent clients; latency: open loop at half the rate",
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    print_table(
        f"bench.jobs — {'quick, ' if quick else ''}{count} jobs per burst; PostgreSQL: {pg_desc}",
        rows,
        [("case", "inkstream"), ("drain_s", "drain jobs/s"), ("jobs_s", "end to end jobs/s"),
         ("at_s", "latency at /s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("baseline_case", "baseline is"),
         ("base_s", "calls/s"), ("ratio", "drain/8 at once")],
    )  # fmt: skip
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.jobs", __doc__, "300 jobs per burst and 5 s of paced load", run, _worker, argv)


if __name__ == "__main__":
    main()
