"""Pages of blobs, schemas, history, books, processors, jobs and runs take turns: a user's burst takes no loop.

A full page is tens of milliseconds of the API's loop and tens of MB at its
peak, and the request rate limit lets a user send 100 at once. A user's page
reads are built two at a time (``INKSTREAM_PAGES_PER_USER``); the others wait
for a turn (a UI asking for a few lists at once is served, not refused), up to
``INKSTREAM_PAGES_WAITING_PER_USER``, past which it is abuse and a 429. Another
user's pages, and the same user's other requests, are answered meanwhile; a
waiting request whose client went away leaves the queue.

The read model is held for the bursting user (a spy around ``blobs``), so what
is observed is which requests reach it, not how fast anything is.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from adapters.client import InkstreamClient
from tests.support.sdk import SignUp
from tests.support.servers import Database
from tests.support.system import RunningSystem, system_on_own_log
from tests.support.users import new_user
from tests.support.wire import Answer, bearer, problem

PER_USER, WAITING = 2, 4


@pytest.fixture(scope="module")
async def system(database: Database) -> AsyncIterator[RunningSystem]:
    """This module's ``http`` and ``sign_up`` talk to a system with a small waiting bound; the limit is the
    HTTP layer's, whatever the read store."""
    async with system_on_own_log(database, run_jobs=False, pages_per_user=PER_USER,
                                 pages_waiting_per_user=WAITING) as (running, _):
        yield running


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def get(http: aiohttp.ClientSession, path: str, ink: InkstreamClient, **params: str) -> Answer:
    """One GET as sent (no retry of a 429, unlike ``call``)."""
    async with http.get(path, params=params, headers=bearer(ink)) as r:
        return Answer(r.status, json.loads(await r.read()), r.headers)


async def test_a_users_burst_of_pages_takes_turns_while_others_are_answered(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp, monkeypatch: pytest.MonkeyPatch,
) -> None:
    heavy, other = await sign_up("pager"), await sign_up("bystander")
    mine, theirs = await heavy.create_blob({"n": 1}), await other.create_blob({"n": 2})
    await other.update_blob(theirs.id, {"n": 3})
    assert heavy.user_id is not None
    gate = system.services.limiters.pages
    model = system.services.reads.model
    original, release = model.blobs, asyncio.Event()
    building = most = 0

    async def held(owner_id: str, *args: Any) -> Any:
        nonlocal building, most
        if owner_id == heavy.user_id:
            building += 1
            most = max(most, building)
            try:
                await release.wait()
            finally:
                building -= 1
        return await original(owner_id, *args)

    monkeypatch.setattr(model, "blobs", held)
    params = {"limit": "500", "min_position": str(heavy.last_position)}
    burst = [asyncio.create_task(get(http, "/v1/blobs", heavy, **params)) for _ in range(PER_USER + WAITING - 1)]
    async with aiohttp.ClientSession(base_url=system.base_url) as gone_client:
        gone = asyncio.create_task(get(gone_client, "/v1/blobs", heavy, **params))
        try:
            await until(lambda: (gate.running(heavy.user_id), gate.waiting(heavy.user_id)) == (PER_USER, WAITING),
                        "the burst's first two building, the rest waiting")
            assert building == PER_USER

            # one more than may wait is abuse: refused at once
            refused = problem(await get(http, "/v1/blobs", heavy, **params), 429, "rate_limited",
                              "rate limit exceeded")
            assert f"at most {PER_USER} page reads at a time and {WAITING} waiting" in refused["detail"]

            # someone else's pages, and the bursting user's own other requests, do not wait for the burst
            assert [b.id for b in (await asyncio.wait_for(other.list_blobs(), 10)).items] == [theirs.id]
            history = await asyncio.wait_for(other.blob_history(theirs.id), 10)
            assert [i.version for i in history.items] == [1, 2]
            assert (await asyncio.wait_for(heavy.get_blob(mine.id), 10)).data == {"n": 1}
            assert (gate.running(heavy.user_id), gate.waiting(heavy.user_id), building) == (PER_USER, WAITING,
                                                                                           PER_USER)
        finally:
            gone.cancel()
    # a waiting request whose client went away leaves its place: the next one waits instead of a 429
    await until(lambda: gate.waiting(heavy.user_id) == WAITING - 1, "the disconnected request left the queue")
    burst.append(asyncio.create_task(get(http, "/v1/blobs", heavy, **params)))
    await until(lambda: gate.waiting(heavy.user_id) == WAITING, "the next request waits")

    release.set()
    answers = await asyncio.gather(*burst)
    assert [a.status for a in answers] == [200] * len(burst)
    assert all([b["id"] for b in a.body["items"]] == [mine.id] for a in answers)
    assert most == PER_USER
    assert (gate.running(heavy.user_id), gate.waiting(heavy.user_id)) == (0, 0)
    # the request cut short by its client's leaving is counted as such (499), not as a server error
    async with http.get("/metrics") as r:
        counted = [line for line in (await r.text()).splitlines()
                   if line.startswith("http_requests_total{") and 'route="/v1/blobs"' in line]
    assert any('status="499"' in line and line.endswith(" 1.0") for line in counted), counted
    assert not any('status="500"' in line for line in counted), counted


@pytest.mark.parametrize(("path", "query"), [("/v1/books", "books"), ("/v1/processors", "processors"),
                                             ("/v1/jobs", "jobs"), ("/v1/migrations", "migrations")])
async def test_pages_of_books_processors_jobs_and_runs_take_the_same_turns(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp, monkeypatch: pytest.MonkeyPatch,
    path: str, query: str,
) -> None:
    """Their pages are up to 2 MiB too (metadata, configs, errors): a burst of them waits, then is refused."""
    heavy = await sign_up(f"pager-{query}")
    assert heavy.user_id is not None
    gate = system.services.limiters.pages
    model = system.services.reads.model
    original, release = getattr(model, query), asyncio.Event()

    async def held(owner_id: str, *args: Any) -> Any:
        if owner_id == heavy.user_id:
            await release.wait()
        return await original(owner_id, *args)

    monkeypatch.setattr(model, query, held)
    burst = [asyncio.create_task(get(http, path, heavy, limit="500")) for _ in range(PER_USER + WAITING)]
    await until(lambda: (gate.running(heavy.user_id), gate.waiting(heavy.user_id)) == (PER_USER, WAITING),
                "two building, the rest waiting")
    problem(await get(http, path, heavy, limit="500"), 429, "rate_limited", "rate limit exceeded")
    release.set()
    assert [a.status for a in await asyncio.gather(*burst)] == [200] * len(burst)
    assert (gate.running(heavy.user_id), gate.waiting(heavy.user_id)) == (0, 0)


async def test_history_pages_waiting_on_the_log_hold_back_no_other_users_pages(database: Database) -> None:
    """A history page is read from the log, which can stall (a leader election, an outage: up to
    ``LOG_WAIT_SECONDS``). While one user's reads wait there, they hold their own turns but none of
    the process's steps: another user's list pages, read from the read model, still answer."""
    async with system_on_own_log(database, run_jobs=False, pages_per_process=2) as (running, _):
        repository = running.services.repo
        released, held = asyncio.Event(), []
        history_page = repository.history_page

        async def stalled(*args: Any, **kwargs: Any) -> Any:
            held.append(args)
            await released.wait()
            return await history_page(*args, **kwargs)

        repository.history_page = stalled  # type: ignore[method-assign]
        async with aiohttp.ClientSession(base_url=running.base_url) as session:
            reader, other = await new_user(session, "reader"), await new_user(session, "other")
            async with session.post("/v1/blobs", json={"data": {"n": 1}}, headers=reader.headers) as r:
                blob_id = (await r.json())["id"]

            async def history() -> int:
                async with session.get(f"/v1/blobs/{blob_id}/history", headers=reader.headers) as r:
                    return r.status

            reads = [asyncio.create_task(history()) for _ in range(2)]  # as many as the process has steps
            await until(lambda: len(held) == 2, "both history reads waiting on the log")
            async with asyncio.timeout(10):
                async with session.get("/v1/blobs", headers=other.headers) as r:
                    assert r.status == 200, "another user's page is not held back by reads waiting on the log"
            released.set()
            assert await asyncio.gather(*reads) == [200, 200]
