"""What the duplicate window costs the stream: memory per message, and recovery after a restart.

    python -m bench.duplicate_window [--quick]

JetStream keeps every ``Nats-Msg-Id`` published within the stream's duplicate
window in memory (an id → sequence map) and rebuilds that map from the stored
messages when the stream is recovered (a restart, a new leader). With the
window at 24 h (``INKSTREAM_DUPLICATE_WINDOW_SECONDS``) every command of the
last day is in it. Measured on one fresh nats-server per case (sync every
2 minutes, so that publishing is quick; the map does not depend on syncing):

* the server's resident memory after N messages carrying command-id-like
  Msg-Ids (``idem-`` + 40 hex, what an ``Idempotency-Key`` becomes) into a
  stream with a 24 h window, beside N messages without a Msg-Id (the
  baseline): the difference per message is the window's cost;
* the time from starting the server again on that store until the stream
  answers, with and without the ids.

A 3-node cluster keeps the map on each replica (checked in the ``R3`` rows:
every node grows). Rows go to bench/results/duplicate_window.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
from nats.js import api

from adapters.runtime.event_loop import run as run_event_loop
from adapters.runtime.nats_cluster import NatsCluster
from adapters.runtime.nats_server import EmbeddedNats
from bench.event_store import print_table, scratch_dir, write_results

NAME = "duplicate_window"
DAY = 86400.0
PAYLOAD = b'{"name": "a bucket", "type": "library", "parent_id": null}'


def rss_bytes(pid: int | None) -> int:
    """Resident memory of a process (VmRSS), in bytes."""
    assert pid is not None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def msg_id(i: int) -> str:
    return "idem-" + hashlib.sha256(f"{uuid.uuid4().hex}{i}".encode()).hexdigest()[:40]


async def publish(url: str, n: int, with_ids: bool, replicas: int = 1) -> float:
    """N messages into a fresh stream with a 24 h window; returns messages/s."""
    nc = await nats.connect(url.split(","))
    try:
        js = nc.jetstream(timeout=10)
        await js.add_stream(api.StreamConfig(name="D", subjects=["d.>"], duplicate_window=DAY,
                                             num_replicas=replicas))
        sem = asyncio.Semaphore(200)
        started = time.perf_counter()

        async def one(i: int) -> None:
            async with sem:
                await js.publish(f"d.{i % 1000}", PAYLOAD, headers={"Nats-Msg-Id": msg_id(i)} if with_ids else None)

        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - started)
    finally:
        await nc.close()


async def settled_rss(pid: int | None) -> int:
    """RSS once it stops moving (the Go runtime returns freed memory in its own time)."""
    last = rss_bytes(pid)
    for _ in range(10):
        await asyncio.sleep(0.5)
        now = rss_bytes(pid)
        if abs(now - last) < 256 * 1024:
            return now
        last = now
    return last


async def stream_answers(url: str, timeout: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            nc = await nats.connect(url.split(","), connect_timeout=1, allow_reconnect=False)
            try:
                await nc.jetstream(timeout=2).stream_info("D")
                return time.perf_counter() - started
            finally:
                await nc.close()
        except Exception:  # noqa: BLE001 - still recovering
            await asyncio.sleep(0.05)
    raise RuntimeError("the stream did not come back")


@contextlib.asynccontextmanager
async def server() -> AsyncIterator[EmbeddedNats]:
    root = scratch_dir("ink-bench-dedupe-")
    node = EmbeddedNats(root / "nats", sync_always=False)
    try:
        await node.start()
        yield node
    finally:
        await node.stop()
        shutil.rmtree(root, ignore_errors=True)


async def single(n: int, with_ids: bool) -> dict[str, Any]:
    async with server() as node:
        assert node.url
        before = await settled_rss(node.pid)
        rate = await publish(node.url, n, with_ids)
        after = await settled_rss(node.pid)
        await node.stop()
        started = time.perf_counter()
        await node.start()
        recovered = await stream_answers(node.url)
        restarted = time.perf_counter() - started
        after_restart = await settled_rss(node.pid)
    return {"rate": rate, "grew": after - before, "restart_s": restarted, "recover_s": recovered,
            "rss_after_restart": after_restart - before}


async def cluster(n: int, with_ids: bool) -> list[int]:
    root = scratch_dir("ink-bench-dedupe-cluster-")
    nodes = NatsCluster(root)
    try:
        await nodes.start()
        before = [await settled_rss(node.pid) for node in nodes.nodes]
        await publish(nodes.url, n, with_ids, replicas=3)
        return [await settled_rss(node.pid) - b for node, b in zip(nodes.nodes, before)]
    finally:
        await nodes.stop()
        shutil.rmtree(root, ignore_errors=True)


async def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 50_000 if quick else 200_000
    n_cluster = 20_000 if quick else 100_000
    started = time.perf_counter()
    with_ids = await single(n, True)
    without = await single(n, False)
    per_msg = (with_ids["grew"] - without["grew"]) / n
    # after a restart the map is rebuilt from the store, without the garbage of publishing: the steadier figure
    per_msg_restarted = (with_ids["rss_after_restart"] - without["rss_after_restart"]) / n
    r3_with = await cluster(n_cluster, True)
    r3_without = await cluster(n_cluster, False)
    r3_per_msg = [(a - b) / n_cluster for a, b in zip(r3_with, r3_without)]
    rows = [
        {"case": f"R1, {n:,} messages with a Msg-Id, 24 h window", "grew_mib": with_ids["grew"] / 2**20,
         "restart_s": with_ids["restart_s"], "rate": with_ids["rate"],
         "baseline_case": "same without Msg-Id", "base_grew_mib": without["grew"] / 2**20,
         "base_restart_s": without["restart_s"], "per_msg_bytes": per_msg},
        {"case": f"R1, the same after a restart (the map rebuilt from the store)",
         "grew_mib": with_ids["rss_after_restart"] / 2**20, "baseline_case": "same without Msg-Id",
         "base_grew_mib": without["rss_after_restart"] / 2**20, "per_msg_bytes": per_msg_restarted},
        {"case": f"R3, {n_cluster:,} messages, each node", "grew_mib": max(r3_with) / 2**20,
         "baseline_case": "same without Msg-Id", "base_grew_mib": max(r3_without) / 2**20,
         "per_msg_bytes": min(r3_per_msg), "nodes_per_msg_bytes": [round(x) for x in r3_per_msg]},
    ]  # fmt: skip
    for rate, label in ((10, "10 commands/s"), (100, "100 commands/s"), (1000, "1,000 commands/s")):
        rows.append({"case": f"24 h window at {label}: {rate * 86400:,} ids",
                     "grew_mib": max(per_msg, per_msg_restarted) * rate * 86400 / 2**20,
                     "baseline_case": "extrapolated from the R1 row"})  # fmt: skip
    meta = {"quick": quick, "seconds": round(time.perf_counter() - started, 1), "n": n, "n_cluster": n_cluster,
            "msg_id": "idem- + 40 hex (45 bytes)", "payload_bytes": len(PAYLOAD),
            "note": "RSS of nats-server settled after publishing, minus before; restart_s: start to stream info"}
    print_table(
        f"bench.duplicate_window — {'quick, ' if quick else ''}what 24 h of Nats-Msg-Id dedupe costs",
        rows,
        [("case", "case"), ("grew_mib", "RSS grew MiB"), ("restart_s", "restart s"), ("per_msg_bytes", "B/msg"),
         ("baseline_case", "baseline is"), ("base_grew_mib", "base MiB"), ("base_restart_s", "base restart s")],
    )  # fmt: skip
    print(f"R3 per node, bytes per message: {rows[2]['nodes_per_msg_bytes']}")
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.duplicate_window", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    run_event_loop(run(quick=parser.parse_args(argv).quick))


if __name__ == "__main__":
    main()
