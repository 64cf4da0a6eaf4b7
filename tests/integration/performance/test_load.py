"""Seed Task 8: 50 concurrent users × 10 × (create book + create blob).

The seed's own bounds (30 s, 10 ops/s, errors under 10 %) are the only timed
assertions of the suite; full-speed figures come from `bench/load.py`.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.support.system import RunningSystem
from tests.support.users import TestUser, new_user

USERS = 50
OPS_PER_USER = 10


async def user_session(http: aiohttp.ClientSession, user: TestUser, errors: list[str]) -> int:
    done = 0
    for j in range(OPS_PER_USER):
        async with http.post("/v1/books", json={"title": f"Book {j}"}, headers=user.headers) as r:
            if r.status != 201:
                errors.append(f"create book: {r.status} {await r.text()}")
                continue
            book = await r.json()
        done += 1
        payload = {"data": {"book_id": book["id"], "content": "Test content"}, "user_id": user.user_id}
        async with http.post("/v1/blobs", json=payload, headers=user.headers) as r:
            if r.status != 201:
                errors.append(f"create blob: {r.status} {await r.text()}")
                continue
        done += 1
    return done


async def test_fifty_concurrent_users_create_books_and_blobs(system: RunningSystem) -> None:
    connector = aiohttp.TCPConnector(limit=USERS)
    async with aiohttp.ClientSession(base_url=system.base_url, connector=connector) as http:
        users = await asyncio.gather(*(new_user(http, f"load{i}") for i in range(USERS)))
        errors: list[str] = []
        started = time.perf_counter()
        done = await asyncio.gather(*(user_session(http, u, errors) for u in users))
        duration = time.perf_counter() - started
    total = USERS * OPS_PER_USER * 2
    ops = sum(done)
    rate = ops / duration
    print(f"\n{USERS} users × {OPS_PER_USER} × (book + blob): {ops}/{total} ops in {duration:.2f} s, "
          f"{rate:.1f} ops/s, {len(errors)} errors")
    assert len(errors) < total * 0.10, errors[:5]
    assert duration < 30, f"took {duration:.1f} s"
    assert rate > 10, f"{rate:.1f} ops/s"
