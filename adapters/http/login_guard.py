"""Failed-login limits that a race cannot get past and a stranger cannot turn against the owner.

Two token buckets, refilled continuously:

* per (account, client address), ``login_failures_per_minute`` (10): what one
  client may guess at one account;
* per account over all addresses, ``login_account_failures_per_minute`` (100):
  the ceiling on a guessing attack spread over many addresses (a botnet, an
  IPv6 range). Addresses from which the account logged in successfully in
  the last ``login_known_address_days`` are exempt from this ceiling (not
  from their own bucket): an attacker elsewhere, with however many
  addresses, can exhaust it and lock out new places, but never the owner
  where they logged in before.

Reserving is the check and the spend in one step: a token is taken before
the password is verified, with no ``await`` in between, so concurrent
attempts cannot all pass one check. A login that succeeds gives its tokens
back (the limits count failures only), and so does one that could not be
decided because the log was unreachable.

State is per process; with several API nodes each keeps its own counts (see
docs/operations.md, "Rate limits across API nodes").
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from adapters.http.ratelimit import TokenBucketLimiter
from adapters.http.errors import RateLimited


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """What one attempt spent, so that it can be given back."""

    account: str
    address: str
    charged_account: bool


class LoginGuard:
    def __init__(
        self,
        per_address_per_minute: float,
        per_account_per_minute: float,
        known_address_seconds: float = 30 * 86400,
        max_known: int = 100_000,
    ) -> None:
        self._pairs = TokenBucketLimiter(per_address_per_minute / 60.0, per_address_per_minute)
        self._accounts = TokenBucketLimiter(per_account_per_minute / 60.0, per_account_per_minute)
        self._known_for = known_address_seconds
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()  # (account, address) -> until
        self._max_known = max_known

    def reserve(self, account: str, address: str, now: float | None = None) -> LoginAttempt:
        """Spend one try, or raise ``RateLimited`` having spent nothing."""
        now = time.monotonic() if now is None else now
        pair = self._pair_key(account, address)
        wait = self._pairs.take(pair, now=now)
        if wait > 0:
            raise RateLimited("too many failed logins for this account from this address", retry_after=wait)
        charged = not self._is_known(account, address, now)
        if charged:
            wait = self._accounts.take(account, now=now)
            if wait > 0:
                self._pairs.refund(pair)
                raise RateLimited("too many failed logins for this account", retry_after=wait)
        return LoginAttempt(account, address, charged)

    def succeeded(self, attempt: LoginAttempt, now: float | None = None) -> None:
        """The password was right: give the try back and remember the address for the account."""
        self.undecided(attempt)
        now = time.monotonic() if now is None else now
        key = (attempt.account, attempt.address)
        self._known[key] = now + self._known_for
        self._known.move_to_end(key)
        while len(self._known) > self._max_known:
            self._known.popitem(last=False)

    def undecided(self, attempt: LoginAttempt) -> None:
        """The attempt could not be decided (the log unreachable): it does not count."""
        self._pairs.refund(self._pair_key(attempt.account, attempt.address))
        if attempt.charged_account:
            self._accounts.refund(attempt.account)

    def _is_known(self, account: str, address: str, now: float) -> bool:
        until = self._known.get((account, address))
        if until is None:
            return False
        if until < now:
            del self._known[(account, address)]
            return False
        return True

    @staticmethod
    def _pair_key(account: str, address: str) -> str:
        return f"{account}|{address}"
