"""Password hashing is bounded: at most ``workers`` hashes run and ``waiting`` more wait; past that a sign-in
is refused at once (503) instead of joining a queue that only grows while a flood lasts."""

from __future__ import annotations

import asyncio
import threading

import pytest

from adapters.security.passwords import Argon2Hasher
from commands.ports import Unavailable

FAST = {"time_cost": 1, "memory_kib": 8, "parallelism": 1}


async def test_a_flood_of_sign_ins_is_refused_past_the_bound_and_what_was_admitted_is_answered() -> None:
    hasher = Argon2Hasher(**FAST, workers=2, waiting=6)
    gate = threading.Event()
    check = hasher._check

    def held(password_hash: str, password: str) -> bool:  # every hash waits until the flood has arrived
        gate.wait(10)
        return check(password_hash, password)

    hasher._check = held  # type: ignore[method-assign]
    try:
        flood = [asyncio.ensure_future(hasher.verify_dummy(f"guess {n}")) for n in range(50)]
        await asyncio.sleep(0.05)
        refused = [f for f in flood if f.done() and isinstance(f.exception(), Unavailable)]
        assert len(refused) == 50 - 8, "2 running and 6 waiting; the rest answered at once"
        assert hasher.refused == 42
        gate.set()
        results = await asyncio.gather(*flood, return_exceptions=True)
        assert sum(r is None for r in results) == 8
        real = await hasher.hash("a real password")  # once the flood has passed, sign-ins are served again
        assert await hasher.verify(real, "a real password")
    finally:
        gate.set()
        hasher.close()


async def test_a_caller_that_stops_waiting_holds_its_place_until_its_thread_is_done() -> None:
    """Cancelling the caller (a client that hung up) must not make room for more work than there are
    threads: the hash it started goes on, and it counts until it ends."""
    hasher = Argon2Hasher(**FAST, workers=1, waiting=0)
    gate = threading.Event()
    check = hasher._check

    def held(password_hash: str, password: str) -> bool:
        gate.wait(10)
        return check(password_hash, password)

    hasher._check = held  # type: ignore[method-assign]
    try:
        first = asyncio.ensure_future(hasher.verify_dummy("one"))
        await asyncio.sleep(0.05)
        first.cancel()
        with pytest.raises(Unavailable):
            await hasher.verify_dummy("two")  # the first one's hash still runs
        gate.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            try:
                await hasher.verify_dummy("three")
                break
            except Unavailable:
                continue
        else:
            raise AssertionError("the place was never given back")
    finally:
        gate.set()
        hasher.close()
