"""The failed-login limits as arithmetic, on a clock the test controls (the buckets of one process)."""

from __future__ import annotations

import pytest

from adapters.http.errors import RateLimited
from adapters.http.login_guard import LoginAttempt, LoginGuard


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Guard:
    """``LoginGuard.local`` with the test's clock, called as ``reserve(account, address, now=T)``."""

    def __init__(self, per_address_per_minute: float, per_account_per_minute: float,
                 known_address_seconds: float = 30 * 86400) -> None:  # fmt: skip
        self.clock = Clock()
        self.guard = LoginGuard.local(per_address_per_minute, per_account_per_minute, known_address_seconds,
                                      clock=self.clock)

    async def reserve(self, account: str, address: str, now: float) -> LoginAttempt:
        self.clock.now = now
        return await self.guard.reserve(account, address)

    async def succeeded(self, attempt: LoginAttempt, now: float) -> None:
        self.clock.now = now
        await self.guard.succeeded(attempt)

    async def undecided(self, attempt: LoginAttempt) -> None:
        await self.guard.undecided(attempt)


async def fail(guard: Guard, account: str, address: str, now: float) -> None:
    await guard.reserve(account, address, now=now)  # a wrong password keeps what it reserved


async def test_each_address_has_its_own_budget_per_account() -> None:
    guard = Guard(per_address_per_minute=3, per_account_per_minute=100)
    for _ in range(3):
        await fail(guard, "acct", "a", now=0)
    with pytest.raises(RateLimited) as refused:
        await guard.reserve("acct", "a", now=0)
    assert 19 <= refused.value.retry_after <= 21  # one try back after 60 s / 3
    await guard.reserve("acct", "b", now=0)  # another address
    await guard.reserve("other", "a", now=0)  # another account
    await guard.reserve("acct", "a", now=20.5)  # refilled


async def test_the_ceiling_per_account_spares_addresses_that_logged_in_before() -> None:
    guard = Guard(per_address_per_minute=3, per_account_per_minute=5, known_address_seconds=3600)
    await guard.succeeded(await guard.reserve("acct", "home", now=0), now=0)
    for address in ("x1", "x1", "x1", "x2", "x2"):
        await fail(guard, "acct", address, now=1)
    with pytest.raises(RateLimited, match="for this account$"):
        await guard.reserve("acct", "x3", now=1)
    with pytest.raises(RateLimited):
        await guard.reserve("acct", "cafe", now=1)  # a new place of the owner's: the price of the ceiling
    await guard.succeeded(await guard.reserve("acct", "home", now=1), now=1)  # the owner at home: never
    for address in ("y1", "y1", "y1", "y2", "y2"):  # hours later, the same again
        await fail(guard, "acct", address, now=7200)
    with pytest.raises(RateLimited, match="for this account$"):
        await guard.reserve("acct", "home", now=7200)  # the address was forgotten after an hour


async def test_a_refused_try_spends_nothing_and_an_undecided_one_is_given_back() -> None:
    guard = Guard(per_address_per_minute=2, per_account_per_minute=2)
    await fail(guard, "acct", "a", now=0)
    await fail(guard, "acct", "b", now=0)
    with pytest.raises(RateLimited):
        await guard.reserve("acct", "a", now=0)  # the account's ceiling; a's own bucket is not charged for it
    await guard.undecided(await guard.reserve("acct", "c", now=30))  # one refilled, given back: still there
    await fail(guard, "acct", "a", now=30)
    with pytest.raises(RateLimited, match="for this account$"):
        await guard.reserve("acct", "a", now=30)
