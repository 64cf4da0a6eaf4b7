"""Failed-login limits that a race cannot get past and a stranger cannot turn against the owner.

Two limits, each a ``Limiter`` (shared by every API process, see
``ratelimit.py``):

* per (account, client address), ``login_failures_per_minute`` (10): what one
  client may guess at one account;
* per account over all addresses, ``login_account_failures_per_minute`` (100):
  the ceiling on a guessing attack spread over many addresses (a botnet, an
  IPv6 range). Addresses from which the account logged in successfully in
  the last ``login_known_address_days`` are exempt from this ceiling (not
  from their own limit): an attacker elsewhere, with however many
  addresses, can exhaust it and lock out new places, but never the owner
  where they logged in before.

Reserving is the check and the spend in one step: a try is taken before the
password is verified, and taking is atomic (a token bucket with no ``await``
inside, or a counter whose add returns the new total), so concurrent attempts
cannot all pass one check. A login that succeeds gives its tries back (the
limits count failures only), and so does one that could not be decided
because the log was unreachable.

The known addresses are ``Marks`` every API process sees (a stream subject
per keyed hash of account and address, kept for ``login_known_address_days``);
each process also remembers the ones it saw, which is what it goes by when
the shared marks cannot be read.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from adapters.http.errors import RateLimited
from adapters.http.ratelimit import Grant, Limiter, LocalLimiter, keyed_hash

log = structlog.get_logger("inkstream.login_guard")


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """What one attempt spent, so that it can be given back."""

    account: str
    address: str
    pair: Grant
    account_grant: Grant | None  # None: a known address, not charged to the account


class Marks(Protocol):
    """Keys seen lately, shared (``adapters.jetstream.shared_limits.JetStreamMarks``)."""

    async def mark(self, key: str) -> None: ...

    async def seen(self, key: str) -> bool: ...


class KnownAddresses:
    """Where each account logged in successfully lately: in this process, and in ``marks`` when given."""

    def __init__(
        self,
        known_seconds: float,
        marks: Marks | None = None,
        secret: bytes = b"",
        *,
        timeout: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        max_known: int = 100_000,
    ) -> None:
        self._for = known_seconds
        self._marks = marks
        self._secret = secret
        self._timeout = timeout
        self._clock = clock
        self._local: OrderedDict[tuple[str, str], float] = OrderedDict()  # (account, address) -> until
        self._max = max_known

    async def is_known(self, account: str, address: str) -> bool:
        if self._known_here(account, address):
            return True
        if self._marks is None:
            return False
        try:
            async with asyncio.timeout(self._timeout):
                return await self._marks.seen(keyed_hash(self._secret, f"{account}|{address}"))
        except Exception as exc:  # noqa: BLE001 - unreadable: what this process saw decides
            log.warning("login_guard.marks_unreachable", error=type(exc).__name__)
            return False

    async def remember(self, account: str, address: str) -> None:
        key = (account, address)
        self._local[key] = self._clock() + self._for
        self._local.move_to_end(key)
        while len(self._local) > self._max:
            self._local.popitem(last=False)
        if self._marks is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._marks.mark(keyed_hash(self._secret, f"{account}|{address}"))
        except Exception as exc:  # noqa: BLE001 - the owner is still known to this process
            log.warning("login_guard.mark_lost", error=type(exc).__name__)

    def _known_here(self, account: str, address: str) -> bool:
        until = self._local.get((account, address))
        if until is None:
            return False
        if until < self._clock():
            del self._local[(account, address)]
            return False
        return True


class LoginGuard:
    def __init__(self, pairs: Limiter, accounts: Limiter, known: KnownAddresses) -> None:
        self._pairs = pairs
        self._accounts = accounts
        self._known = known

    @classmethod
    def local(
        cls,
        per_address_per_minute: float,
        per_account_per_minute: float,
        known_address_seconds: float = 30 * 86400,
        clock: Callable[[], float] = time.monotonic,
    ) -> LoginGuard:
        """Limits kept in this process only (one API process, or no NATS at hand)."""
        return cls(
            LocalLimiter(per_address_per_minute / 60.0, per_address_per_minute, clock),
            LocalLimiter(per_account_per_minute / 60.0, per_account_per_minute, clock),
            KnownAddresses(known_address_seconds, clock=clock),
        )

    async def reserve(self, account: str, address: str) -> LoginAttempt:
        """Spend one try, or raise ``RateLimited`` having spent nothing."""
        pair = await self._pairs.take(self._pair_key(account, address))
        if not pair.allowed:
            raise RateLimited("too many failed logins for this account from this address", retry_after=pair.wait)
        charged: Grant | None = None
        if not await self._known.is_known(account, address):
            charged = await self._accounts.take(account)
            if not charged.allowed:
                await self._pairs.refund(pair)
                raise RateLimited("too many failed logins for this account", retry_after=charged.wait)
        return LoginAttempt(account, address, pair, charged)

    async def succeeded(self, attempt: LoginAttempt) -> None:
        """The password was right: give the try back and remember the address for the account."""
        await self.undecided(attempt)
        await self._known.remember(attempt.account, attempt.address)

    async def undecided(self, attempt: LoginAttempt) -> None:
        """The attempt could not be decided (the log unreachable): it does not count."""
        await self._pairs.refund(attempt.pair)
        if attempt.account_grant is not None:
            await self._accounts.refund(attempt.account_grant)

    @staticmethod
    def _pair_key(account: str, address: str) -> str:
        return f"{account}|{address}"
