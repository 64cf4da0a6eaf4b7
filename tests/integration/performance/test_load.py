"""Seed Task 8: 50 concurrent users × 10 × (create book + create blob).

Each user is an SDK client of its own (all on one HTTP connection pool); an
SDK exception (after the SDK's own retries) counts as an error. The seed's own
bounds (30 s, 10 ops/s, errors under 10 %) are the only timed assertions of
the suite; full-speed figures come from `bench/load.py`.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from adapters.client import InkstreamClient, InkstreamError
from tests.support.sdk import new_client
from tests.support.system import RunningSystem

USERS = 50
OPS_PER_USER = 10


async def user_session(ink: InkstreamClient, errors: list[str]) -> int:
    done = 0
    for j in range(OPS_PER_USER):
        try:
            book = await ink.create_book(f"Book {j}")
        except InkstreamError as exc:
            errors.append(f"create book: {exc!r}")
            continue
        done += 1
        try:
            await ink.create_blob({"book_id": book.id, "content": "Test content"})
        except InkstreamError as exc:
            errors.append(f"create blob: {exc!r}")
            continue
        done += 1
    return done


async def test_fifty_concurrent_users_create_books_and_blobs(system: RunningSystem) -> None:
    connector = aiohttp.TCPConnector(limit=USERS)
    async with aiohttp.ClientSession(connector=connector) as http:
        users = await asyncio.gather(*(new_client(system.base_url, f"load{i}", session=http, retry_rate_limited=False)
                                       for i in range(USERS)))
        errors: list[str] = []
        started = time.perf_counter()
        done = await asyncio.gather(*(user_session(ink, errors) for ink in users))
        duration = time.perf_counter() - started
    total = USERS * OPS_PER_USER * 2
    ops = sum(done)
    rate = ops / duration
    print(f"\n{USERS} users × {OPS_PER_USER} × (book + blob): {ops}/{total} ops in {duration:.2f} s, "
          f"{rate:.1f} ops/s, {len(errors)} errors")
    assert len(errors) < total * 0.10, errors[:5]
    assert duration < 30, f"took {duration:.1f} s"
    assert rate > 10, f"{rate:.1f} ops/s"
