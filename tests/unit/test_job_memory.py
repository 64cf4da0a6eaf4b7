"""The memory budget of a job runner: jobs start when the limits of those running leave room for theirs."""

from __future__ import annotations

import asyncio

import pytest

from adapters.jobs.memory import MemoryBudget


async def test_jobs_wait_until_their_limit_fits_first_come_first_served() -> None:
    budget = MemoryBudget(2048)
    order: list[str] = []
    gates = {name: asyncio.Event() for name in "abcd"}

    async def job(name: str, mb: int) -> None:
        async with budget.reserve(mb):
            order.append(name)
            await gates[name].wait()

    tasks = [asyncio.create_task(job("a", 1024)), asyncio.create_task(job("b", 1024))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(job("c", 1024)), asyncio.create_task(job("d", 64))]
    await asyncio.sleep(0.01)
    assert order == ["a", "b"] and budget.used == 2048, "c waits, and d does not pass it"
    gates["a"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b", "c"] and budget.used == 2048, "c in a's room; d still waits for its own"
    gates["b"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b", "c", "d"] and budget.used == 1024 + 64
    for gate in gates.values():
        gate.set()
    await asyncio.gather(*tasks)
    assert budget.used == 0


async def test_a_limit_over_the_whole_budget_runs_alone_and_a_cancelled_waiter_gives_way() -> None:
    budget = MemoryBudget(512)
    held = asyncio.Event()

    async def hold(mb: int) -> None:
        async with budget.reserve(mb):
            await held.wait()

    big = asyncio.create_task(hold(4096))  # more than the budget: runs alone, never forever waiting
    await asyncio.sleep(0.01)
    assert budget.used == 512
    waiting = asyncio.create_task(hold(256))
    behind = asyncio.create_task(hold(128))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    held.set()
    await asyncio.gather(big, behind)
    assert budget.used == 0
