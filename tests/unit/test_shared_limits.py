"""Shared rate limits as arithmetic: several limiters (as several API processes would) on one set of
counters, on a wall clock the test controls. The counters here are a dict with the same contract as
the JetStream counter stream (an add returns the new total); tests/integration/cluster runs the real one."""

from __future__ import annotations

import asyncio

import pytest

from adapters.http.errors import RateLimited
from adapters.http.login_guard import KnownAddresses, LoginGuard
from adapters.http.ratelimit import LocalLimiter, SharedLimiter


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class MemoryCounters:
    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.down = False
        self.adds = 0

    async def add(self, key: str, delta: int) -> int:
        if self.down:
            raise ConnectionError("counters unreachable")
        await asyncio.sleep(0)  # let concurrent callers interleave, as a round trip would
        self.adds += 1
        self.totals[key] = self.totals.get(key, 0) + delta
        return self.totals[key]

    async def get(self, key: str) -> int:
        if self.down:
            raise ConnectionError("counters unreachable")
        return self.totals.get(key, 0)


class MemoryMarks:
    def __init__(self) -> None:
        self.keys: set[str] = set()

    async def mark(self, key: str) -> None:
        self.keys.add(key)

    async def seen(self, key: str) -> bool:
        return key in self.keys


def processes(n: int, rate: float, burst: float, counters: MemoryCounters, clock: Clock) -> list[SharedLimiter]:
    return [SharedLimiter("user", rate, burst, counters, b"k", clock=clock) for _ in range(n)]


async def admitted_over(limiters: list[SharedLimiter], clock: Clock, seconds: float, per_second: int) -> int:
    """Every limiter asks ``per_second`` times a second (evenly) for ``seconds``; how many were allowed."""
    allowed, step = 0, 1.0 / per_second
    for _ in range(int(seconds * per_second)):
        for limiter in limiters:
            allowed += (await limiter.take("ada")).allowed
        clock.now += step
    return allowed


async def test_a_burst_then_the_rate_whatever_the_number_of_processes() -> None:
    for n in (1, 2, 3):
        clock, counters = Clock(), MemoryCounters()
        limiters = processes(n, rate=10, burst=20, counters=counters, clock=clock)
        allowed = await admitted_over(limiters, clock, seconds=10, per_second=100)
        # a bucket would allow 20 + 10 x 10 = 120; the window gives the rate, and never more than the bucket
        print(f"{n} process(es) asking 100/s each for 10 s at 10/s, burst 20: {allowed} allowed")
        assert 90 <= allowed <= 120


async def test_the_burst_is_allowed_at_once_and_the_next_request_waits() -> None:
    clock, counters = Clock(), MemoryCounters()
    a, b = processes(2, rate=2, burst=5, counters=counters, clock=clock)
    grants = [await (a if i % 2 else b).take("ada") for i in range(6)]
    assert [g.allowed for g in grants] == [True] * 5 + [False]
    # a bucket would refill one try in 0.5 s; the window, having spent it all at its start, a window later
    assert 0.5 <= grants[-1].wait <= 2 * 2.5
    assert (await a.take("grace")).allowed, "another key has its own limit"


async def test_concurrent_requests_cannot_all_pass_one_check() -> None:
    clock, counters = Clock(), MemoryCounters()
    a, b = processes(2, rate=1, burst=3, counters=counters, clock=clock)
    grants = await asyncio.gather(*((a if i % 2 else b).take("ada") for i in range(40)))
    assert sum(g.allowed for g in grants) == 3


async def test_a_refund_gives_the_try_back_to_every_process() -> None:
    clock, counters = Clock(), MemoryCounters()
    a, b = processes(2, rate=1, burst=2, counters=counters, clock=clock)
    first = await a.take("ada")
    await a.take("ada")
    assert not (await b.take("ada")).allowed
    await a.refund(first)
    assert (await b.take("ada")).allowed


async def test_without_the_counters_each_process_keeps_its_own_limit() -> None:
    clock, counters = Clock(), MemoryCounters()
    counters.down = True
    a, b = processes(2, rate=1, burst=3, counters=counters, clock=clock)
    allowed_a = [(await a.take("ada")).allowed for _ in range(5)]
    allowed_b = [(await b.take("ada")).allowed for _ in range(5)]
    assert allowed_a == allowed_b == [True] * 3 + [False] * 2  # no one locked out, no one unlimited


async def test_a_fallback_goes_on_from_what_the_process_spent_not_from_a_fresh_burst() -> None:
    """The counters stop answering halfway through a burst (as when the process is too busy to read
    them in time): the process's own bucket has followed what the counters let through."""
    clock, counters = Clock(), MemoryCounters()
    [a] = processes(1, rate=0.5, burst=10, counters=counters, clock=clock)
    first = [(await a.take("ada")).allowed for _ in range(6)]
    counters.down = True
    rest = [(await a.take("ada")).allowed for _ in range(10)]
    assert first == [True] * 6 and sum(rest) == 4, (first, rest)


async def test_a_recovery_hands_out_no_fresh_burst() -> None:
    """The counters stop answering, one process lets some requests through on its own bucket, the
    counters come back: what it let through reaches them, so the total over every process stays the
    burst (before, the counters knew nothing of it and handed out a whole burst again)."""
    clock, counters = Clock(), MemoryCounters()
    a, b = processes(2, rate=0.5, burst=10, counters=counters, clock=clock)
    counters.down = True
    alone = [(await a.take("ada")).allowed for _ in range(4)]
    counters.down = False
    a._broken_until = 0.0  # the pause after a failed call (a second) is over
    rest = [(await p.take("ada")).allowed for p in (a, b) for _ in range(10)]
    assert alone == [True] * 4 and sum(rest) == 6, (alone, rest)


async def test_a_closed_window_is_read_once_per_process() -> None:
    clock, counters = Clock(), MemoryCounters()
    (a,) = processes(1, rate=100, burst=100, counters=counters, clock=clock)
    reads = 0
    get = counters.get

    async def counting_get(key: str) -> int:
        nonlocal reads
        reads += 1
        return await get(key)

    counters.get = counting_get  # type: ignore[method-assign]
    for _ in range(50):
        await a.take("ada")
    assert reads == 1 and counters.adds == 50


async def test_one_timeout_bounds_the_add_and_the_closed_windows_read_together() -> None:
    """A take decides on its own (the process's bucket) once ``timeout`` has passed in all: the read of
    the closed window's total gets what the add left of it, not a timeout of its own."""
    clock, counters = Clock(), MemoryCounters()
    add, get = counters.add, counters.get

    async def slow_add(key: str, delta: int) -> int:
        await asyncio.sleep(0.15)
        return await add(key, delta)

    async def slow_get(key: str) -> int:
        await asyncio.sleep(0.15)
        return await get(key)

    counters.add, counters.get = slow_add, slow_get  # type: ignore[method-assign]
    limiter = SharedLimiter("user", 10, 20, counters, b"k", clock=clock, timeout=0.2)
    assert (await limiter.take("ada")).allowed
    assert limiter.fallbacks == 1, "0.15 s + 0.15 s is past the 0.2 s timeout: decided locally"


def shared_guard(counters: MemoryCounters, marks: MemoryMarks, clock: Clock) -> LoginGuard:
    def limiter(name: str, per_minute: float) -> SharedLimiter:
        return SharedLimiter(name, per_minute / 60.0, per_minute, counters, b"k", clock=clock)

    return LoginGuard(limiter("login-pair", 3), limiter("login-account", 8), KnownAddresses(3600, marks, b"k"))


async def test_failed_logins_count_across_processes_and_known_addresses_are_shared() -> None:
    clock, counters, marks = Clock(), MemoryCounters(), MemoryMarks()
    one, two = shared_guard(counters, marks, clock), shared_guard(counters, marks, clock)
    await one.succeeded(await one.reserve("acct", "home"))  # the owner, through process one
    await one.reserve("acct", "x")
    await two.reserve("acct", "x")
    await one.reserve("acct", "x")
    with pytest.raises(RateLimited, match="from this address"):
        await two.reserve("acct", "x")  # 3 per address, whichever process counted them
    for address in ("y", "y", "y", "z", "z"):  # the account's ceiling of 8, across processes
        await (one if address == "y" else two).reserve("acct", address)
    with pytest.raises(RateLimited, match="for this account$"):
        await two.reserve("acct", "new-place")
    attempt = await two.reserve("acct", "home")  # known through process one: exempt from the ceiling
    assert attempt.account_grant is None
    assert not marks.keys & {"acct|home"}, "marks hold keyed hashes, not accounts and addresses"


async def test_work_charged_after_the_fact_holds_the_key_back_on_every_process_until_paid_for() -> None:
    """A request that read many events is charged as many requests once answered (the middleware's
    ``_metered``). The charge costs no round trip of its own: it goes with the key's next request in
    that process, which it holds back, and the ones after it in every process, until the window has
    slid past it."""
    clock, counters = Clock(), MemoryCounters()
    one, two = processes(2, rate=100, burst=1000, counters=counters, clock=clock)
    assert (await one.take("ada")).allowed
    adds = counters.adds
    await one.charge("ada", 1500)  # one expensive request: more than the burst, already done
    assert counters.adds == adds
    refused = await one.take("ada")
    assert not refused.allowed and refused.wait > 0
    assert not (await two.take("ada")).allowed, "the charge reached the shared counter"
    assert (await two.take("grace")).allowed, "other keys pay nothing"
    clock.now += refused.wait + 1e-6
    assert (await two.take("ada")).allowed, "Retry-After is when it is paid for, not later"


async def test_a_charge_owed_for_longer_than_two_windows_is_dropped_and_never_more_than_two_bursts() -> None:
    """What the sliding window would have forgotten by then anyway: a charge owed overnight (the key
    asked nothing more of this process) must not refuse the morning's first request."""
    clock, counters = Clock(), MemoryCounters()
    [one] = processes(1, rate=100, burst=1000, counters=counters, clock=clock)
    assert (await one.take("ada")).allowed
    await one.charge("ada", 10**9)
    assert one._owed["ada"][0] == 2000
    clock.now += 2 * one.window + 1
    assert (await one.take("ada")).allowed


async def test_work_charged_while_the_counters_are_down_is_owed_and_added_when_they_are_back() -> None:
    clock, counters = Clock(), MemoryCounters()
    one, two = processes(2, rate=100, burst=1000, counters=counters, clock=clock)
    counters.down = True
    assert (await one.take("ada")).allowed  # decided alone
    await one.charge("ada", 1500)
    assert not (await one.take("ada")).allowed, "the process's own bucket is in debt meanwhile"
    counters.down = False
    one._broken_until = 0.0  # the pause after a failed call (a second) is over
    await one.take("ada")  # the owed work reaches the shared counter with the key's next request
    assert not (await two.take("ada")).allowed, "and holds the key back on the other process too"


def test_a_local_bucket_goes_into_debt_of_at_most_one_burst_and_refills_out_of_it() -> None:
    limiter = LocalLimiter(rate_per_second=100, burst=1000, clock=Clock())
    clock = limiter._clock
    assert limiter.take_now("ada").allowed
    limiter.charge_now("ada", 10**9)  # whatever it cost, the debt is one burst at most
    wait = limiter.take_now("ada").wait
    assert 10.0 < wait <= 10.02  # (1 + 1000) / 100
    clock.now += wait  # type: ignore[attr-defined]
    assert limiter.take_now("ada").allowed


async def test_work_billed_by_a_process_that_serves_none_of_the_keys_requests_holds_it_back_at_once() -> None:
    """The job runner and the trigger dispatcher bill a user for work done outside their requests: no
    next request of that user in their process would carry an owed charge, so a bill goes to the
    shared counter at once, and is owed only while the counters are down."""
    clock, counters = Clock(), MemoryCounters()
    api, worker = processes(2, rate=100, burst=1000, counters=counters, clock=clock)
    assert (await api.take("ada")).allowed
    adds = counters.adds
    await worker.bill("ada", 1500)
    assert counters.adds == adds + 1, "one round trip"
    assert not (await api.take("ada")).allowed, "the API process refuses at once"
    assert (await api.take("grace")).allowed
    counters.down = True
    await worker.bill("bob", 1500)  # lost to the counters: owed by the worker, and logged
    assert worker._owed["bob"][0] == 1500
    await worker.bill("bob", 0)
    assert worker._owed["bob"][0] == 1500, "nothing billed, nothing owed"
    counters.down = False
    adds = counters.adds
    await worker.bill("cy", 10)  # within a second of the failure: owed at once, no call that may hang
    assert counters.adds == adds and worker._owed["cy"][0] == 10


async def test_a_refused_key_is_refused_by_the_process_until_its_wait_without_asking_the_counters() -> None:
    """A flood of tiny WebSocket messages (or requests) past the limit made two round trips to the
    counters each: the refusal is now remembered until its Retry-After."""
    clock, counters = Clock(), MemoryCounters()
    one = SharedLimiter("user", 1, 5, counters, b"k", clock=clock, remember_refusals=True, monotonic=clock)
    for _ in range(5):
        assert (await one.take("ada")).allowed
    refused = await one.take("ada")
    assert not refused.allowed and refused.wait > 1.0
    adds = counters.adds
    for _ in range(1000):
        again = await one.take("ada")
        assert not again.allowed and again.wait == refused.wait, "the same Retry-After, not a shorter one"
    assert counters.adds == adds, "no round trip while it is known to be refused"
    assert (await one.take("grace")).allowed
    clock.now += 1.0 + 1e-6  # remembered for a second at most (the wait here is longer)
    asked = counters.adds
    assert not (await one.take("ada")).allowed and counters.adds > asked, "then the counters are asked again"
    clock.now += refused.wait
    assert (await one.take("ada")).allowed
