"""Concurrent queries share the log-tail lookup, and none takes an answer older than itself."""

from __future__ import annotations

import asyncio

from adapters.read_your_writes import SharedTail


class SlowLog:
    def __init__(self) -> None:
        self.position = 0
        self.lookups = 0
        self.release = asyncio.Event()

    async def last_position(self) -> int:
        self.lookups += 1
        seen = self.position  # what the server says when the request reaches it
        await self.release.wait()
        self.release.clear()
        return seen


async def test_a_query_never_takes_the_answer_of_a_lookup_that_started_before_it() -> None:
    log = SlowLog()
    tail = SharedTail(log)
    first = asyncio.create_task(tail.last_position())  # lookup 1 starts, sees 0
    for _ in range(3):
        await asyncio.sleep(0)
    log.position = 5  # a write is acknowledged, then three more queries arrive
    later = [asyncio.create_task(tail.last_position()) for _ in range(3)]
    await asyncio.sleep(0)
    log.release.set()
    assert await first == 0
    await asyncio.sleep(0)
    log.release.set()
    assert await asyncio.gather(*later) == [5, 5, 5]  # one shared lookup, started after they arrived
    assert log.lookups == 2


async def test_a_failed_lookup_fails_its_queries_and_the_next_lookup_tries_again() -> None:
    class Down:
        calls = 0

        async def last_position(self) -> int:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("log down")
            return 7

    tail = SharedTail(Down())
    results = await asyncio.gather(tail.last_position(), tail.last_position(), return_exceptions=True)
    # the first query's lookup fails; the second arrived after it started, so it had its own
    assert isinstance(results[0], ConnectionError) and results[1] == 7
    assert await tail.last_position() == 7
