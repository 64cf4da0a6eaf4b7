"""The memory budget of a job runner: a sandboxed job starts when the limits of those running leave
room for its own, in order of arrival among those that fit, one user holding at most half."""

from __future__ import annotations

import asyncio

import pytest

from adapters.jobs.memory import MemoryBudget


async def started(budget: MemoryBudget, user: str, mb: int) -> asyncio.Task[int]:
    task = asyncio.create_task(budget.acquire(user, mb))
    await asyncio.sleep(0)
    return task


async def test_jobs_wait_for_room_and_a_small_one_is_not_held_behind_a_big_one() -> None:
    budget = MemoryBudget(2048)
    a = await started(budget, "ann", 1024)
    b = await started(budget, "bob", 1024)
    assert a.done() and b.done() and budget.used == 2048
    c = await started(budget, "cy", 1024)
    d = await started(budget, "dee", 64)
    assert not c.done() and not d.done(), "full: both wait"
    budget.release("ann", await a)
    await asyncio.sleep(0)
    assert c.done() and not d.done(), "c came first and fits"
    budget.release("bob", await b)
    await asyncio.sleep(0)
    assert d.done() and budget.used == 1024 + 64
    e = await started(budget, "eve", 1024)
    f = await started(budget, "fay", 16)
    assert not e.done() and f.done(), "a small job that fits goes past a big one that does not"
    for user, task in (("cy", c), ("dee", d), ("fay", f)):
        budget.release(user, await task)
    await asyncio.sleep(0)
    budget.release("eve", await e)
    assert budget.used == 0


async def test_one_user_holds_at_most_half_and_a_job_over_it_runs_when_they_hold_nothing_else() -> None:
    budget = MemoryBudget(2048)
    first = await started(budget, "ann", 1024)
    second = await started(budget, "ann", 1024)
    other = await started(budget, "bob", 512)
    assert first.done() and not second.done() and other.done(), "ann's second would pass her half"
    budget.release("ann", await first)
    await asyncio.sleep(0)
    assert second.done()
    huge = await started(budget, "cy", 4096)  # over the whole budget: runs alone, never waits forever
    budget.release("ann", await second)
    budget.release("bob", await other)
    await asyncio.sleep(0)
    assert await huge == 2048 and budget.used == 2048
    budget.release("cy", 2048)
    assert budget.used == 0


async def test_a_cancelled_waiter_leaves_nothing_held() -> None:
    budget = MemoryBudget(512)
    held = await started(budget, "ann", 256)
    waiting = await started(budget, "ann", 256)  # over ann's half
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    budget.release("ann", await held)
    assert budget.used == 0 and not budget._waiting
