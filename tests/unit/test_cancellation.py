"""A cancellation swallowed on the way (nats-py, ``wait_for`` on 3.11) still stops the loops that check for it."""

from __future__ import annotations

import asyncio

import pytest

from adapters.cancellation import cancelling, raise_if_cancelling
from adapters.jetstream.connection import _at_most
from adapters.positions import PositionBoard


async def _swallowing_call() -> None:
    """What nats-py's publish does: a cancellation arriving here is caught and dropped."""
    try:
        await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        pass


async def test_a_loop_that_checks_stops_although_its_cancellation_was_swallowed() -> None:
    turns = 0

    async def loop() -> None:
        nonlocal turns
        while True:
            raise_if_cancelling()
            turns += 1
            await _swallowing_call()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    task.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert turns == 1


async def test_not_cancelling_outside_a_cancellation_nor_after_a_timeout() -> None:
    assert not cancelling()
    raise_if_cancelling()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await asyncio.sleep(1)
    assert not cancelling()  # asyncio.timeout withdrew its own cancellation
    raise_if_cancelling()


async def test_the_cancellation_of_whoever_stops_a_watch_is_passed_on() -> None:
    class Idle(PositionBoard):
        async def _follow(self) -> None:
            await asyncio.sleep(3600)

    board = Idle()
    board._task = asyncio.create_task(board._follow())
    await board.stop()  # its own end is no error
    assert board._task.cancelled()

    class Slow(PositionBoard):
        async def _follow(self) -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                await asyncio.sleep(0.2)  # a slow way out

    slow = Slow()
    slow._task = asyncio.create_task(slow._follow())
    await asyncio.sleep(0)
    stopping = asyncio.create_task(slow.stop())
    await asyncio.sleep(0.05)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping


async def test_at_most_bounds_a_step_that_swallows_its_cancellation() -> None:
    async def stubborn_close() -> None:  # nats-py's drain: catches the CancelledError, goes on
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(0.5)

    started = asyncio.get_running_loop().time()
    await _at_most(stubborn_close(), 0.1)
    assert asyncio.get_running_loop().time() - started < 0.4
