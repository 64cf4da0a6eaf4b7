"""The receive budget hands out bytes first come first served and loses none to a cancelled waiter."""

from __future__ import annotations

import asyncio

import pytest

from adapters.jetstream.receive_budget import ReceiveBudget


async def test_requests_that_do_not_fit_wait_in_order() -> None:
    budget = ReceiveBudget(10)
    order: list[str] = []
    held = asyncio.Event()

    async def hold(name: str, size: int) -> None:
        async with budget.take(size):
            order.append(name)
            await held.wait()

    first = asyncio.create_task(hold("a", 8))
    await asyncio.sleep(0)
    later = [asyncio.create_task(hold(name, size)) for name, size in (("b", 5), ("c", 1))]
    await asyncio.sleep(0.01)
    assert order == ["a"] and budget.free == 2  # "c" would fit, but waits behind "b"
    held.set()
    await asyncio.gather(first, *later)
    assert order == ["a", "b", "c"] and budget.free == 10


async def test_a_request_larger_than_the_budget_takes_all_of_it() -> None:
    budget = ReceiveBudget(10)
    async with budget.take(50):
        assert budget.free == 0
    assert budget.free == 10


async def test_a_cancelled_waiter_leaves_the_queue_and_lets_the_next_in() -> None:
    budget = ReceiveBudget(10)
    release = asyncio.Event()

    async def hold(size: int) -> None:
        async with budget.take(size):
            await release.wait()

    first = asyncio.create_task(hold(6))
    await asyncio.sleep(0)
    big = asyncio.create_task(hold(10))
    small = asyncio.create_task(hold(4))
    await asyncio.sleep(0.01)
    assert budget.free == 4  # "small" waits behind "big"
    big.cancel()
    await asyncio.sleep(0.01)
    assert budget.free == 0  # "small" got in once "big" left
    release.set()
    await asyncio.gather(first, small)
    with pytest.raises(asyncio.CancelledError):
        await big
    assert budget.free == 10


async def test_a_waiter_cancelled_as_it_is_granted_passes_the_bytes_on() -> None:
    budget = ReceiveBudget(10)
    entered: list[int] = []

    async def hold(size: int, wait: asyncio.Event | None = None) -> None:
        async with budget.take(size):
            entered.append(size)
            if wait is not None:
                await wait.wait()

    release = asyncio.Event()
    first = asyncio.create_task(hold(10, release))
    await asyncio.sleep(0)
    granted = asyncio.create_task(hold(7))
    after = asyncio.create_task(hold(3))
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.sleep(0)  # the first leaves: "granted" gets its bytes but has not run yet
    granted.cancel()
    await asyncio.gather(first, after, return_exceptions=True)
    with pytest.raises(asyncio.CancelledError):
        await granted
    assert entered[0] == 10 and 3 in entered and 7 not in entered
    assert budget.free == 10
