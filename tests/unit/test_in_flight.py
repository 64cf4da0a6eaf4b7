"""``InFlight``: a user's heavy requests take turns (pages wait for one; exports are refused at once).

A page read that cannot have a turn yet waits, first come first served among
its user's, and never holds a turn of another user; a waiter that goes away
(the client disconnected: its task is cancelled) leaves no slot behind, even
when it was granted one just as it was cancelled. Past ``waiting_per_user``
waiters the next is a 429: that many at once is abuse, not a UI.
"""

from __future__ import annotations

import asyncio

import pytest

from adapters.http.errors import RateLimited
from adapters.http.in_flight import InFlight


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Holder:
    """A request holding a slot of ``user`` until ``done`` is set; ``order`` records when it got it."""

    def __init__(self, gate: InFlight, user: str, name: str, order: list[str]) -> None:
        self.done = asyncio.Event()
        self.task = asyncio.create_task(self._run(gate, user, name, order))

    async def _run(self, gate: InFlight, user: str, name: str, order: list[str]) -> None:
        async with gate.slot(user):
            order.append(name)
            await self.done.wait()


async def test_a_users_requests_past_its_slots_wait_and_go_in_the_order_they_came() -> None:
    gate = InFlight("page reads", per_user=2, per_process=4, waiting_per_user=8)
    order: list[str] = []
    held = [Holder(gate, "a", f"a{i}", order) for i in range(5)]
    other = Holder(gate, "b", "b0", order)
    await settle()
    assert order == ["a0", "a1", "b0"]  # a's third waits; b is not held by a's
    assert (gate.running("a"), gate.waiting("a"), gate.running("b")) == (2, 3, 1)

    held[1].done.set()
    await settle()
    assert order == ["a0", "a1", "b0", "a2"] and (gate.running("a"), gate.waiting("a")) == (2, 2)
    held[0].done.set()
    await settle()
    assert order[-1] == "a3"
    for h in (*held, other):
        h.done.set()
    await asyncio.gather(*(h.task for h in (*held, other)))
    assert order == ["a0", "a1", "b0", "a2", "a3", "a4"]
    assert (gate.running("a"), gate.waiting("a"), gate.running("b")) == (0, 0, 0)


async def test_a_cancelled_waiter_leaves_its_place_and_no_slot_behind() -> None:
    gate = InFlight("page reads", per_user=1, per_process=4, waiting_per_user=8)
    order: list[str] = []
    first, gone, last = (Holder(gate, "a", name, order) for name in ("first", "gone", "last"))
    await settle()
    assert gate.waiting("a") == 2
    gone.task.cancel()  # the client went away while waiting
    await settle()
    assert gate.waiting("a") == 1 and gone.task.cancelled()
    first.done.set()
    await settle()
    assert order == ["first", "last"] and gate.running("a") == 1
    last.done.set()
    await asyncio.gather(first.task, last.task)
    assert (gate.running("a"), gate.waiting("a")) == (0, 0)


async def test_a_waiter_cancelled_as_it_is_granted_its_slot_hands_it_on() -> None:
    gate = InFlight("page reads", per_user=1, per_process=4, waiting_per_user=8)
    order: list[str] = []
    first = gate.slot("a")
    await first.__aenter__()
    granted, last = (Holder(gate, "a", name, order) for name in ("granted", "last"))
    await settle()
    await first.__aexit__(None, None, None)  # grants "granted" its slot, without letting it run ...
    granted.task.cancel()  # ... and it is cancelled before it could use it
    await settle()
    assert granted.task.cancelled() and order == ["last"]
    last.done.set()
    await last.task
    assert (gate.running("a"), gate.waiting("a")) == (0, 0)


async def test_past_the_waiting_bound_the_next_is_a_429_and_a_slot_freed_takes_one_again() -> None:
    gate = InFlight("page reads", per_user=2, per_process=4, waiting_per_user=3)
    order: list[str] = []
    held = [Holder(gate, "a", f"a{i}", order) for i in range(5)]
    await settle()
    assert (gate.running("a"), gate.waiting("a")) == (2, 3)
    with pytest.raises(RateLimited, match="at most 2 page reads at a time and 3 waiting") as refused:
        async with gate.slot("a"):
            pass
    assert refused.value.retry_after == 1.0
    async with gate.slot("b"):  # another user is not refused
        pass
    for h in held:
        h.done.set()
    await asyncio.gather(*(h.task for h in held))
    async with gate.slot("a"):
        assert gate.running("a") == 1


async def test_without_waiting_the_next_is_refused_at_once_as_exports_are() -> None:
    gate = InFlight("exports", per_user=1, per_process=4)
    async with gate.slot("a"):
        with pytest.raises(RateLimited, match="at most 1 exports at a time; wait for one to finish"):
            async with gate.slot("a"):
                pass
    assert gate.running("a") == 0


async def test_the_process_steps_are_shared_by_every_user() -> None:
    gate = InFlight("page reads", per_user=2, per_process=1, waiting_per_user=8)
    inside: list[str] = []
    release = asyncio.Event()

    async def step(name: str) -> None:
        async with gate.step():
            inside.append(name)
            await release.wait()
            inside.remove(name)

    tasks = [asyncio.create_task(step(n)) for n in ("a", "b")]
    await settle()
    assert inside == ["a"]
    release.set()
    await asyncio.gather(*tasks)
    assert inside == []


def test_limits_are_checked() -> None:
    for bad in ({"per_user": 0, "per_process": 1}, {"per_user": 1, "per_process": 0},
                {"per_user": 1, "per_process": 1, "waiting_per_user": -1}):
        with pytest.raises(ValueError):
            InFlight("pages", **bad)  # type: ignore[arg-type]
