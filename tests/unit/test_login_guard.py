"""The failed-login limits as arithmetic, on a clock the test controls."""

from __future__ import annotations

import pytest

from adapters.http.login_guard import LoginGuard
from adapters.http.errors import RateLimited


def fail(guard: LoginGuard, account: str, address: str, now: float) -> None:
    guard.reserve(account, address, now=now)  # a wrong password keeps what it reserved


def test_each_address_has_its_own_budget_per_account() -> None:
    guard = LoginGuard(per_address_per_minute=3, per_account_per_minute=100)
    for _ in range(3):
        fail(guard, "acct", "a", now=0)
    with pytest.raises(RateLimited) as refused:
        guard.reserve("acct", "a", now=0)
    assert 19 <= refused.value.retry_after <= 21  # one try back after 60 s / 3
    guard.reserve("acct", "b", now=0)  # another address
    guard.reserve("other", "a", now=0)  # another account
    guard.reserve("acct", "a", now=20.5)  # refilled


def test_the_ceiling_per_account_spares_addresses_that_logged_in_before() -> None:
    guard = LoginGuard(per_address_per_minute=3, per_account_per_minute=5, known_address_seconds=3600)
    guard.succeeded(guard.reserve("acct", "home", now=0), now=0)
    for address in ("x1", "x1", "x1", "x2", "x2"):
        fail(guard, "acct", address, now=1)
    with pytest.raises(RateLimited, match="for this account$"):
        guard.reserve("acct", "x3", now=1)
    with pytest.raises(RateLimited):
        guard.reserve("acct", "cafe", now=1)  # a new place of the owner's: the price of the ceiling
    guard.succeeded(guard.reserve("acct", "home", now=1), now=1)  # the owner at home: never
    for address in ("y1", "y1", "y1", "y2", "y2"):  # hours later, the same again
        fail(guard, "acct", address, now=7200)
    with pytest.raises(RateLimited, match="for this account$"):
        guard.reserve("acct", "home", now=7200)  # the address was forgotten after an hour


def test_a_refused_try_spends_nothing_and_an_undecided_one_is_given_back() -> None:
    guard = LoginGuard(per_address_per_minute=2, per_account_per_minute=2)
    fail(guard, "acct", "a", now=0)
    fail(guard, "acct", "b", now=0)
    with pytest.raises(RateLimited):
        guard.reserve("acct", "a", now=0)  # the account's ceiling; a's own bucket is not charged for it
    guard.undecided(guard.reserve("acct", "c", now=30))  # one refilled, given back: still there
    fail(guard, "acct", "a", now=30)
    with pytest.raises(RateLimited, match="for this account$"):
        guard.reserve("acct", "a", now=30)
