"""Live pushes: latency under load and memory per idle connection, beside a bare aiohttp broadcast.

    python -m bench.live [--quick] [--shared-pg]

The app runs in this process (``tests.support.system.start_system``, own
nats-server and PostgreSQL as in bench.http, limits lifted); the clients run
in a separate process (``--worker``) so they do not share the server's loop.

* **Push latency**: 1,000 WebSocket connections (quick: 200), authenticated
  and each subscribed to one of 100 buckets; one writer creates blobs in those
  buckets at 500 events/s (quick: 100/s), open loop. For every push a
  connection receives, latency = the moment the push arrived − the moment the
  ``POST /v1/blobs`` that caused it was answered (both ``perf_counter`` in the
  client process; negative when the push beat the answer). Also counted:
  pushes expected vs received.
* **Memory per idle connection**: the growth of the server process's Python
  heap (tracemalloc) while N more idle connections (authenticated and
  subscribed) are open, over N; kernel socket buffers are not included.
* The same pushes are also timed from the moment the request was *sent*,
  which compares with the baseline (that sends before it answers, so its
  answer → push figure is zero or below by construction).
* **Baseline, same run, same client**: a bare aiohttp app whose ``/ws`` takes a
  ``{"bucket": B}`` message and whose ``POST /publish`` numbers the event and
  sends it to every socket of that bucket: the cost of delivering the same
  events with nothing of inkstream (no log, no auth, no state, no queue).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import sys
import time
import tracemalloc
import uuid
from collections import defaultdict
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bench.common import ROOT, bench_main
from bench.event_store import own_nats, percentile, print_table, write_results
from bench.http import PASSWORD, database

NAME = "live"
BUCKETS = 100


# --------------------------------------------------------------------------- clients (child process)


async def _open_ours(session: aiohttp.ClientSession, spec: dict[str, Any], i: int) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(spec["ws_url"], heartbeat=None)
    await ws.send_str(orjson.dumps({"type": "auth", "data": {"token": spec["token"]}}).decode())
    assert orjson.loads((await ws.receive()).data)["type"] == "auth.ok"
    bucket = spec["buckets"][i % len(spec["buckets"])]
    await ws.send_str(orjson.dumps({"type": "subscribe", "data": {"bucket_id": bucket}}).decode())
    answer = orjson.loads((await ws.receive()).data)
    assert answer["type"] == "subscribed", answer
    return ws


async def _open_bare(session: aiohttp.ClientSession, spec: dict[str, Any], i: int) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(spec["ws_url"], heartbeat=None)
    await ws.send_str(orjson.dumps({"bucket": spec["buckets"][i % len(spec["buckets"])]}).decode())
    assert orjson.loads((await ws.receive()).data)["type"] == "subscribed"
    return ws


async def _open_all(session: aiohttp.ClientSession, spec: dict[str, Any]) -> list[aiohttp.ClientWebSocketResponse]:
    opener = _open_ours if spec["kind"] == "ours" else _open_bare
    sem = asyncio.Semaphore(50)

    async def one(i: int) -> aiohttp.ClientWebSocketResponse:
        async with sem:
            return await opener(session, spec, i)

    return list(await asyncio.gather(*(one(i) for i in range(spec["connections"]))))


async def _latency(spec: dict[str, Any]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = await _open_all(session, spec)
        answered: dict[int, float] = {}
        arrivals: list[tuple[int, float]] = []
        measuring = {"from": float("inf")}

        async def receive(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for frame in ws:
                now = time.perf_counter()
                if frame.type != aiohttp.WSMsgType.TEXT:
                    return
                message = orjson.loads(frame.data)
                if message["type"] == "blob.created":
                    arrivals.append((message["data"]["position"], now))

        readers = [asyncio.create_task(receive(ws)) for ws in sockets]
        headers = {"Authorization": f"Bearer {spec['token']}"}
        written: list[tuple[int, float]] = []  # (position, sent at) of the measured writes
        sent_at: dict[int, float] = {}
        errors = 0

        async def write(i: int) -> None:
            nonlocal errors
            bucket = spec["buckets"][i % len(spec["buckets"])]
            sent = time.perf_counter()
            body = {"data": {"i": i}, "bucket_ids": [bucket]} if spec["kind"] == "ours" else {"bucket": bucket,
                                                                                                "data": {"i": i}}
            try:
                async with session.post(spec["post_url"], json=body, headers=headers) as r:
                    payload = await r.json()
                    done = time.perf_counter()
                    if r.status >= 300:
                        errors += 1
                        return
            except aiohttp.ClientError:
                errors += 1
                return
            answered[payload["position"]] = done
            sent_at[payload["position"]] = sent
            if sent >= measuring["from"]:
                written.append((payload["position"], sent))

        rate, warmup, duration = spec["rate"], spec["warmup"], spec["duration"]
        t0 = time.perf_counter()
        measuring["from"] = t0 + warmup
        tasks = []
        for i in itertools.count():
            due = t0 + i / rate
            if due >= t0 + warmup + duration:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(write(i)))
        await asyncio.gather(*tasks)
        expected = len(written) * len(sockets) / len(spec["buckets"])
        deadline = time.perf_counter() + 30
        measured_now = {p for p, _ in written}
        while time.perf_counter() < deadline:  # the last pushes arrive
            if sum(1 for p, _ in arrivals if p in measured_now) >= expected:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        for ws in sockets:
            await ws.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    measured = {p for p, _ in written}
    per_bucket = spec["connections"] / len(spec["buckets"])
    latencies = [(t - answered[p]) * 1000 for p, t in arrivals if p in measured and p in answered]
    end_to_end = [(t - sent_at[p]) * 1000 for p, t in arrivals if p in measured and p in sent_at]
    commands = [(answered[p] - sent_at[p]) * 1000 for p in measured if p in answered]
    return {
        "events": len(measured),
        "events_per_s": len(measured) / duration,
        "expected_pushes": round(len(measured) * per_bucket),
        "received_pushes": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
        "command_p50_ms": percentile(commands, 50),
        "command_p99_ms": percentile(commands, 99),
        "sent_p50_ms": percentile(end_to_end, 50),
        "sent_p99_ms": percentile(end_to_end, 99),
        "before_answer": sum(1 for x in latencies if x < 0),
        "errors": errors,
    }


async def _idle(spec: dict[str, Any]) -> dict[str, Any]:
    """Open the connections, say so on stdout, keep them until a line on stdin."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = await _open_all(session, spec)
        print("open", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for ws in sockets:
            await ws.close()
    return {"connections": len(sockets)}


async def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    return await (_latency(spec) if spec["mode"] == "latency" else _idle(spec))


async def _spawn(spec: dict[str, Any]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.live", "--worker", orjson.dumps(spec).decode(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
    )  # fmt: skip


async def latency(spec: dict[str, Any]) -> dict[str, Any]:
    proc = await _spawn({**spec, "mode": "latency"})
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"live worker failed: {err.decode()[-2000:]}")
    return json.loads(out.splitlines()[-1])  # NaN where nothing was measured


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def idle_memory(spec: dict[str, Any], settle: float = 1.0) -> float:
    """Bytes of the server's Python heap per idle connection (tracemalloc: exact, unlike RSS,
    which a process that freed memory before does not grow)."""
    tracemalloc.start()
    try:
        return await _idle_memory(spec, settle)
    finally:
        tracemalloc.stop()


async def _idle_memory(spec: dict[str, Any], settle: float) -> float:
    await asyncio.sleep(settle)
    before = _traced()
    proc = await _spawn({**spec, "mode": "idle"})
    assert proc.stdout is not None and proc.stdin is not None
    line = await proc.stdout.readline()
    if line.strip() != b"open":
        raise RuntimeError(f"idle worker: {line!r} {(await proc.stderr.read()).decode()[-2000:]}")  # type: ignore[union-attr]
    await asyncio.sleep(settle)
    after = _traced()
    proc.stdin.write(b"done\n")
    await proc.stdin.drain()
    await proc.communicate()
    return (after - before) / spec["connections"]


# --------------------------------------------------------------------------- the baseline server


class BareBroadcast:
    """A WebSocket broadcast with nothing else: what delivering the events costs at the least."""

    def __init__(self) -> None:
        self.sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self.position = 0

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        first = await ws.receive()
        bucket = orjson.loads(first.data)["bucket"]
        self.sockets[bucket].add(ws)
        await ws.send_str('{"type":"subscribed"}')
        try:
            async for _ in ws:
                pass
        finally:
            self.sockets[bucket].discard(ws)
        return ws

    async def publish(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.position += 1
        text = orjson.dumps({"type": "blob.created", "data": {"bucket_id": body["bucket"], "position": self.position,
                                                              "blob": {"data": body["data"]}}}).decode()
        for ws in list(self.sockets[body["bucket"]]):
            await ws.send_str(text)
        return web.json_response({"position": self.position})


async def _bare_app() -> tuple[web.AppRunner, str]:
    from tests.support.system import free_port

    bare = BareBroadcast()
    app = web.Application()
    app.router.add_get("/ws", bare.ws)
    app.router.add_post("/publish", bare.publish)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------- the bench


async def run(quick: bool = False, shared_pg: bool = False) -> list[dict[str, Any]]:
    from adapters.telemetry.logging import configure_logging
    from tests.support.system import start_system

    configure_logging(level="error")
    connections, rate, duration, warmup = (200, 100, 3.0, 1.0) if quick else (1000, 500, 8.0, 2.0)
    # the command path alone, the demanded load, and a lighter one
    passes = [(0, rate), (connections, rate), (connections, rate // 5)]
    idle_n = 200 if quick else 1000
    started = time.perf_counter()
    overrides = {
        "rate_limit_per_second": 1e9, "rate_limit_burst": 10**9,
        "anonymous_rate_limit_per_second": 1e9, "anonymous_rate_limit_burst": 10**9, "sign_in_rate_per_second": 1e9, "sign_in_burst": 10**9,
        "live_max_connections_per_user": 10**6, "live_max_subscriptions_per_user": 10**6, "log_level": "error",
    }  # fmt: skip
    async with own_nats() as nats_server, database(shared_pg) as (dsn, pg_desc):
        assert nats_server.url
        system = await start_system(nats_server.url, dsn, **overrides)
        try:
            async with aiohttp.ClientSession(base_url=system.base_url) as http:
                body = {"email": f"live{uuid.uuid4().hex}@bench.example.com", "password": PASSWORD, "username": "l"}
                async with http.post("/v1/auth/register", json=body) as r:
                    token = (await r.json())["token"]
                auth = {"Authorization": f"Bearer {token}"}
                buckets = []
                for i in range(BUCKETS):
                    async with http.post("/v1/buckets", json={"name": f"b{i}", "type": "folder"}, headers=auth) as r:
                        buckets.append((await r.json())["id"])
            ws_url = system.base_url.replace("http://", "ws://") + "/ws"
            common = {"token": token, "buckets": buckets, "ws_url": ws_url, "kind": "ours",
                      "duration": duration, "warmup": warmup, "post_url": system.base_url + "/v1/blobs"}
            ours_memory = await idle_memory({**common, "connections": idle_n})
            ours = {(n, r): await latency({**common, "connections": n, "rate": r}) for n, r in passes}
        finally:
            await system.stop()

    runner, bare_url = await _bare_app()
    try:
        bare_common = {"token": "", "buckets": [f"b{i}" for i in range(BUCKETS)], "ws_url": bare_url + "/ws",
                       "kind": "bare", "duration": duration, "warmup": warmup, "post_url": bare_url + "/publish"}
        bare_memory = await idle_memory({**bare_common, "connections": idle_n})
        bare = {(n, r): await latency({**bare_common, "connections": n, "rate": r}) for n, r in passes if n}
    finally:
        await runner.cleanup()

    def ms(result: dict[str, Any], key: str = "") -> str:
        prefix = f"{key}_" if key else ""
        return f"{result[prefix + 'p50_ms']:.1f} / {result[prefix + 'p99_ms']:.1f} ms"

    rows: list[dict[str, Any]] = []
    for n, r in passes:
        got = ours[(n, r)]
        if not n:
            rows.append({"case": f"POST /v1/blobs alone at {r}/s, no connection open (sent → answered)",
                         "value": ms(got, "command"), "p50_ms": round(got["command_p50_ms"], 2),
                         "p99_ms": round(got["command_p99_ms"], 2), "errors": got["errors"]})
            continue
        base = bare[(n, r)]
        rows += [
            {"case": f"{n} connections, {r} events/s: answer → push", "value": ms(got), "p50_ms": round(got["p50_ms"], 2), "p99_ms": round(got["p99_ms"], 2),
             "max_ms": round(got["max_ms"], 1), "pushes": f"{got['received_pushes']}/{got['expected_pushes']}",
             "errors": got["errors"], "before_answer": got["before_answer"],
             "baseline_case": "bare broadcast (sends before it answers)",
             "base": ms(base),
             "base_pushes": f"{base['received_pushes']}/{base['expected_pushes']}"},
            {"case": f"{n} connections, {r} events/s: sent → answered (the command)", "value": ms(got, "command"),
             "p50_ms": round(got["command_p50_ms"], 2), "p99_ms": round(got["command_p99_ms"], 2),
             "baseline_case": "bare broadcast: sent → answered", "base": ms(base, "command")},
            {"case": f"{n} connections, {r} events/s: sent → push", "value": ms(got, "sent"),
             "p50_ms": round(got["sent_p50_ms"], 2), "p99_ms": round(got["sent_p99_ms"], 2),
             "baseline_case": "bare broadcast: sent → push", "base": ms(base, "sent"),
             "ratio": round(got["sent_p50_ms"] / base["sent_p50_ms"], 1) if base["sent_p50_ms"] > 0 else None},
        ]  # fmt: skip
    rows.append({"case": f"server memory per idle connection ({idle_n} authenticated, subscribed)",
                 "value": f"{ours_memory / 1024:.1f} kB", "bytes": round(ours_memory),
                 "baseline_case": "bare aiohttp WebSocket, subscribed", "base": f"{bare_memory / 1024:.1f} kB",
                 "base_bytes": round(bare_memory),
                 "ratio": round(ours_memory / bare_memory, 2) if bare_memory > 0 else None})
    meta = {"quick": quick, "seconds": round(time.perf_counter() - started, 1), "connections": connections,
            "rate": rate, "duration_s": duration, "warmup_s": warmup, "buckets": BUCKETS, "postgres": pg_desc,
            "nats": "own EmbeddedNats (sync_interval: always)",
            "clients": "separate process, one aiohttp session; latency from the POST's answer to the push",
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    print_table(
        f"bench.live — {'quick, ' if quick else ''}{connections} connections, {rate} events/s, {duration:g} s; "
        f"PostgreSQL: {pg_desc}",
        rows,
        [("case", "inkstream"), ("value", "value"), ("pushes", "pushes got/expected"),
         ("baseline_case", "baseline"), ("base", "baseline value"), ("ratio", "ours/base")],
    )  # fmt: skip
    path = write_results(NAME, rows, meta)
    print(f"({meta['seconds']} s; rows in {path})")
    return rows


def main(argv: list[str] | None = None) -> None:
    bench_main("bench.live", __doc__, "200 connections at 100 events/s for 3 s", run, _worker, argv)


if __name__ == "__main__":
    main()
