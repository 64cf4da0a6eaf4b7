"""Seed Task 9: NATS and PostgreSQL outages, with servers this test owns.

Each test prints what it killed, when, and what it counted.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from adapters.runtime.nats_server import EmbeddedNats
from adapters.runtime.postgres_server import EmbeddedPostgres
from tests.integration.resilience.load import CommandStream, verify_acknowledged
from tests.support.servers import Database, start_nats, start_throwaway_postgres
from tests.support.system import start_system

OPEN_LIMITS = {
    "anonymous_rate_limit_per_second": 1e6, "anonymous_rate_limit_burst": 10**6, "sign_in_rate_per_second": 1e6, "sign_in_burst": 10**6,
    "rate_limit_per_second": 1e6, "rate_limit_burst": 10**6, "login_failures_per_minute": 1e6,
    "write_bytes_per_second": 1e12, "write_bytes_burst": 10**12,
    "read_wait_seconds": 2.0,
}


@pytest.fixture
async def own_nats() -> AsyncIterator[EmbeddedNats]:
    server, root = await start_nats()
    try:
        yield server
    finally:
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def own_postgres() -> AsyncIterator[EmbeddedPostgres]:
    server, root = await start_throwaway_postgres()
    try:
        yield server
    finally:
        await server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


async def wait_until(predicate, timeout: float, step: float = 0.1) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(step)
    raise AssertionError(f"not within {timeout} s")


async def health(base_url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/health") as r:
            return r.status, await r.json()


async def test_nats_killed_during_commands_loses_nothing_acknowledged(own_nats: EmbeddedNats, database: Database) -> None:
    assert own_nats.url
    # an outage longer than the log wait (1 s here, 10 s by default) answers 503
    system = await start_system(own_nats.url, await database.new_database(), **OPEN_LIMITS, log_wait_seconds=1.0)
    stream = CommandStream(system.base_url, workers=4)
    try:
        stream.start()
        await asyncio.sleep(1.5)
        before = len(stream.acked)
        pid = own_nats.pid
        own_nats.kill()
        killed_at = time.monotonic()
        await asyncio.sleep(0.5)
        status, body = await health(system.base_url)
        assert status == 503 and body["status"] == "unhealthy" and "nats" in body["failing"], body
        await asyncio.sleep(2.5)
        during = dict(stream.statuses)
        await own_nats.start()
        stream.mark("nats_back")
        back_at = time.monotonic()
        await asyncio.sleep(3)
        await stream.stop()
    except BaseException:
        try:
            await stream.stop()
        finally:  # a worker's error must not leave the whole system running past the test
            await system.stop()
        raise
    try:
        recovery = stream.first_ok_after.get("nats_back")
        last = await system.services.store.last_position()
        await system.running.watch.wait(last, [p.name for p in system.services.projections], 15)
        found, lost = await verify_acknowledged(system.base_url, stream.acked)
        users = await count_users(system.running.database_url)
        print(
            f"\nkilled nats-server pid {pid} (SIGKILL) after {before} acknowledged commands; "
            f"outage {back_at - killed_at:.1f} s; statuses {dict(stream.statuses)} (during outage {during}); "
            f"acknowledged {len(stream.acked)}, lost {lost}, first success {recovery and round(recovery, 2)} s "
            f"after restart; read-model rows {users} (log {last})"
        )
        assert stream.statuses[500] == 0, "a NATS outage must never be a 500"
        assert set(stream.statuses) <= {201, 503}, stream.statuses
        assert stream.statuses[503] > 0, "the outage should have been noticed"
        assert stream.missing_retry_after == 0, "every 503 carries Retry-After"
        assert lost == 0 and found == len(stream.acked)
        assert recovery is not None and recovery < 10
        status, body = await health(system.base_url)
        assert status == 200, body
    finally:
        await system.stop()


async def count_users(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        dupes = await conn.fetchval("SELECT count(*) FROM (SELECT email FROM users GROUP BY email HAVING count(*) > 1) d")
        assert dupes == 0, "duplicated rows in the read model"
        return int(await conn.fetchval("SELECT count(*) FROM users"))
    finally:
        await conn.close()


async def test_postgres_stopped_commands_go_on_queries_503_and_read_models_catch_up(
    nats_server: str, own_postgres: EmbeddedPostgres
) -> None:
    assert own_postgres.dsn
    system = await start_system(nats_server, own_postgres.dsn, **OPEN_LIMITS)
    stream = CommandStream(system.base_url, workers=3)
    try:
        stream.start()
        await asyncio.sleep(1.0)
        await own_postgres.stop("immediate")
        stopped_at = time.monotonic()
        acked_before_outage = len(stream.acked)
        await asyncio.sleep(1.0)
        probe = stream.acked[-1]
        async with aiohttp.ClientSession(base_url=system.base_url) as http:
            async with http.post("/v1/auth/login", json={"email": probe.email, "password": probe.password}) as r:
                assert r.status == 200, "login reads the log only"
                token = (await r.json())["token"]
            async with http.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"}) as r:
                body = await r.json()
                assert r.status == 503 and body["code"] == "unavailable" and "Retry-After" in r.headers
        status, body = await health(system.base_url)
        assert status == 503 and "postgres" in body["failing"], body
        await asyncio.sleep(1.5)
        acked_during = len(stream.acked) - acked_before_outage
        await own_postgres.start()
        back_at = time.monotonic()
        await asyncio.sleep(1.0)
        await stream.stop()
    except BaseException:
        try:
            await stream.stop()
        finally:  # a worker's error must not leave the whole system running past the test
            await system.stop()
        raise
    try:
        last = await system.services.store.last_position()
        names = [p.name for p in system.services.projections]
        caught_up = await wait_until(lambda: _reached(system, last, names), 10)
        found, lost = await verify_acknowledged(system.base_url, stream.acked)
        rows = await count_users(own_postgres.dsn)
        print(
            f"\nstopped PostgreSQL (immediate) for {back_at - stopped_at:.1f} s; commands acknowledged during the "
            f"outage {acked_during}; statuses {dict(stream.statuses)}; acknowledged {len(stream.acked)}, lost {lost}; "
            f"read models caught up {caught_up:.1f} s after its return; rows {rows}"
        )
        assert acked_during > 0, "commands must go on while the read-model store is down"
        assert stream.statuses[500] == 0
        assert lost == 0 and rows >= len(stream.acked)
    finally:
        await system.stop()


async def _reached(system, position: int, names: list[str]) -> bool:  # type: ignore[no-untyped-def]
    return system.running.watch.reached(position, names)
