"""Rate limits: a token bucket in the process, and the same limit shared by every API process.

``TokenBucketLimiter`` is the bucket of one process: ``burst`` tokens,
refilled continuously at ``rate`` per second.

``SharedLimiter`` holds the same limit across processes on counters that all
of them see (``Counters``, on a JetStream counter stream). A bucket needs a
compare-and-set of (tokens, time), which a shared store does slowly under
contention, so the limit is kept as a sliding window over counters instead:
time is cut into windows of ``burst / rate`` seconds (the time the bucket
takes to refill), a request adds its cost to its window's counter, and it is
allowed while

    previous window's count x (share of the previous window still inside the
    sliding window) + this window's count (ours included)  <=  burst

the estimate Cloudflare described for its edge ("How we built rate limiting
capable of scaling to millions of domains", 2017). Like the bucket it
allows a burst of ``burst`` and ``rate`` per second after it; unlike the
bucket, what was spent early in a window is only refilled once that window
is over, so after a burst the first token returns up to one window later
than a bucket would give it: never more than the bucket allows. The
increment and the check are one step on the counter (its total comes back
with the add), so concurrent requests cannot all pass one check; a refused
request takes its add back.

When the counters do not answer within ``timeout`` (an election of the
counter stream's leader, NATS unreachable, a process too busy to read the
answer in time), the process's own bucket decides, for one second before the
counters are asked again: the limit then holds per process, and nobody is
refused because the limit store is down. That bucket is charged with every
request the counters let through too, so a fallback continues from what this
process already spent instead of starting a fresh burst.

Keys (user ids, client addresses, account hashes) go to the counters as an
HMAC under a secret every API process shares, so the stream holds no
address or id in the clear.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("inkstream.ratelimit")

MAX_WINDOW_SECONDS = 86400.0


def window_seconds(rate_per_second: float, burst: float) -> float:
    """How long a token bucket of ``burst`` takes to refill at ``rate_per_second`` (at most a day)."""
    if rate_per_second <= 0:
        return MAX_WINDOW_SECONDS
    return min(MAX_WINDOW_SECONDS, max(burst, 1.0) / rate_per_second)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    def __init__(self, rate_per_second: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_keys = max_keys

    def take(self, key: str, cost: float = 1.0, now: float | None = None) -> float:
        """0 when allowed (and spent), else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate if self.rate > 0 else 60.0

    def spend(self, key: str, cost: float, now: float | None = None) -> None:
        """Spend ``cost`` whatever is left, for work already done: the bucket may go into debt
        (at most one ``burst``), and ``take`` refuses until it has refilled past it."""
        self.take(key, 0.0, now)  # refilled to now (and created when new)
        bucket = self._buckets[key]
        bucket.tokens = max(-self.burst, bucket.tokens - cost)

    def refund(self, key: str, cost: float = 1.0) -> None:
        """Give back what ``take`` spent, for work that turned out not to count (a login that succeeded)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(self.burst, bucket.tokens + cost)


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer to ``take``: ``wait`` 0 when allowed; what to name to give it back."""

    wait: float
    key: str = ""
    cost: int = 1
    shared: bool = False  # spent on the shared counter ``key``, else on the local bucket ``key``

    @property
    def allowed(self) -> bool:
        return self.wait <= 0


class Limiter(Protocol):
    async def take(self, key: str, cost: int = 1) -> Grant: ...

    async def refund(self, grant: Grant) -> None: ...

    async def charge(self, key: str, cost: int) -> None:
        """Spend ``cost`` for work already done, allowed or not: later ``take``s pay for it."""
        ...

    async def bill(self, key: str, cost: int) -> None:
        """``charge`` for work a process did on the key's behalf outside its requests (the job
        runner, the trigger dispatcher): every process's ``take``s pay for it at once."""
        ...


class Counters(Protocol):
    """Counters every API process sees (``adapters.jetstream.shared_limits.JetStreamCounters``)."""

    async def add(self, key: str, delta: int) -> int:
        """Add ``delta`` to ``key``; the total right after this add, atomically. Fails (an exception)
        when no answer comes within the counters' own timeout, which bounds every ``take``."""
        ...

    async def get(self, key: str) -> int: ...


class LocalLimiter:
    """A ``Limiter`` on this process's own token bucket."""

    def __init__(self, rate_per_second: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.bucket = TokenBucketLimiter(rate_per_second, burst)
        self._clock = clock

    def take_now(self, key: str, cost: int = 1) -> Grant:
        wait = self.bucket.take(key, cost, now=self._clock())
        return Grant(wait, key, cost) if wait > 0 else Grant(0.0, key, cost)

    async def take(self, key: str, cost: int = 1) -> Grant:
        return self.take_now(key, cost)

    async def refund(self, grant: Grant) -> None:
        if grant.allowed and not grant.shared:
            self.bucket.refund(grant.key, grant.cost)

    def charge_now(self, key: str, cost: int) -> None:
        if cost > 0:
            self.bucket.spend(key, cost, now=self._clock())

    async def charge(self, key: str, cost: int) -> None:
        self.charge_now(key, cost)

    bill = charge  # the process's own bucket is all there is: no other process to reach


def keyed_hash(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:32]


REMEMBERED_REFUSAL_SECONDS = 1.0
"""The longest a process refuses a key on its own after the counters refused it."""


class SharedLimiter:
    """``rate`` per second with bursts of ``burst``, over every process that shares ``counters``."""

    def __init__(
        self,
        name: str,
        rate_per_second: float,
        burst: float,
        counters: Counters,
        secret: bytes,
        *,
        timeout: float = 0.5,
        clock: Callable[[], float] = time.time,
        fallback: LocalLimiter | None = None,
        max_cached: int = 100_000,
        remember_refusals: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.burst = float(burst)
        self.window = window_seconds(rate_per_second, burst)
        self._counters = counters
        self._secret = secret
        self._timeout = timeout
        self._clock = clock
        self.local = fallback or LocalLimiter(rate_per_second, burst)
        self._previous: OrderedDict[str, int] = OrderedDict()  # closed windows' totals, read once each
        self._max_cached = max_cached
        self._broken_until = 0.0
        self._hashed: dict[str, str] = {}  # key -> its keyed hash (two HMACs per request otherwise)
        # What this process let through on its own while the counters did not answer, and what requests
        # were charged after the fact (``charge``), per key: added to the shared counter with the key's
        # next request, so a recovery hands out no fresh burst and a charge costs no round trip.
        self._owed: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (amount, when last owed)
        # key -> (until when it is refused without asking, until when its wait lasts), monotonic
        self._refused: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._remember_refusals = remember_refusals
        """For limits whose takes all cost about the same and are never refunded (requests): a key
        refused is refused here for a while (a second at most) without asking the counters again."""
        self._monotonic = monotonic
        self.fallbacks = 0
        """Requests this process decided on its own because the counters did not answer in time (stricter
        than the shared limit, never looser: an add that timed out may have landed and is owed again)."""

    def _counter(self, key: str, window: int) -> str:
        hashed = self._hashed.get(key)
        if hashed is None:
            if len(self._hashed) >= self._max_cached:
                self._hashed.clear()
            hashed = self._hashed[key] = keyed_hash(self._secret, key)
        return f"{self.name}.{window}.{hashed}"

    def _owe(self, key: str, cost: int) -> None:
        """At most two bursts, for two windows: what the sliding window would have forgotten by then
        anyway (a charge owed overnight must not refuse the morning's first request)."""
        if cost:
            owed, _ = self._owed.get(key, (0, 0.0))
            self._owed[key] = (min(owed + cost, int(2 * self.burst)), self._clock())
            self._owed.move_to_end(key)
            if len(self._owed) > self._max_cached:
                self._owed.popitem(last=False)

    def _take_owed(self, key: str, now: float) -> int:
        owed, since = self._owed.pop(key, (0, 0.0))
        return owed if now - since <= 2 * self.window else 0

    def _take_locally(self, key: str, cost: int) -> Grant:
        grant = self.local.take_now(key, cost)
        if grant.allowed:
            self._owe(key, cost)
        return grant

    async def take(self, key: str, cost: int = 1) -> Grant:
        until = self._refused.get(key)
        if until is not None:
            # Refused a moment ago: refused here until then, without asking the counters. Each refusal
            # took two round trips to NATS, so a client sending tiny WebSocket frames (or requests) as
            # fast as it could made this process hammer the counters for it.
            recheck, until_paid = until
            now = self._monotonic()
            if now < recheck:
                return Grant(until_paid - now)
            del self._refused[key]
        if time.monotonic() < self._broken_until:
            self.fallbacks += 1
            return self._take_locally(key, cost)
        now = self._clock()
        window = int(now // self.window)
        elapsed = now - window * self.window
        counter = self._counter(key, window)
        owed = self._take_owed(key, now)
        began = asyncio.get_running_loop().time()
        try:
            # the add is bounded by the counters' own deadline (one timer per batch of adds to the key),
            # and reading a closed window's total (once per window) by what is left of the same timeout
            current = await self._counters.add(counter, cost + owed)
            previous = await self._closed_total(self._counter(key, window - 1), began + self._timeout)
        except Exception as exc:  # noqa: BLE001 - the counters are unreachable: this process decides
            self._broken_until = time.monotonic() + 1.0
            log.warning("ratelimit.local_fallback", limit=self.name, error=type(exc).__name__)
            self._owe(key, owed)  # the add may not have landed: owed once more (stricter, never looser)
            self.fallbacks += 1
            return self._take_locally(key, cost)
        weight = 1.0 - elapsed / self.window
        if previous * weight + current <= self.burst:
            # The process's own bucket follows what it let through, so that falling back to it
            # (counters too slow to answer) does not hand out a fresh burst on top of the shared one.
            self.local.take_now(key, cost)
            return Grant(0.0, counter, cost, shared=True)
        await self._give_back(counter, cost)
        wait = self._wait(previous, current, cost, elapsed)
        if self._remember_refusals:
            # at most a second: the wait assumes nothing else is spent, and other requests in flight
            # (added, not yet given back) may make it longer than the counters will soon say
            now = self._monotonic()
            self._refused[key] = (now + min(wait, REMEMBERED_REFUSAL_SECONDS), now + wait)
            self._refused.move_to_end(key)
            if len(self._refused) > self._max_cached:
                self._refused.popitem(last=False)
        return Grant(wait)

    async def charge(self, key: str, cost: int) -> None:
        """Spent on the process's own bucket now, and owed to the shared counter: it goes with the key's
        next ``take`` in this process (no round trip of its own), which it holds back, and the ones after
        it in every process, until the sliding window has left it behind."""
        if cost > 0:
            self.local.charge_now(key, cost)
            self._owe(key, cost)

    async def bill(self, key: str, cost: int) -> None:
        """Added to the shared counter now (one round trip): a charge owed here would reach it only with
        the key's next request to this process, and a job runner or a trigger dispatcher serves none.

        While the counters do not answer (and for a second after, like ``take``) it is owed like a
        ``charge`` instead, without waiting: a process that serves none of the key's requests then
        never pays it, which is the price of never holding the work it bills for back."""
        if cost <= 0:
            return
        self.local.charge_now(key, cost)
        if time.monotonic() < self._broken_until:
            self._owe(key, cost)
            return
        counter = self._counter(key, int(self._clock() // self.window))
        try:
            async with asyncio.timeout(self._timeout):
                await self._counters.add(counter, cost)
        except Exception as exc:  # noqa: BLE001 - the counters are unreachable: owed, like a fallback's requests
            self._broken_until = time.monotonic() + 1.0
            log.warning("ratelimit.bill_owed", limit=self.name, error=type(exc).__name__)
            self._owe(key, cost)

    async def refund(self, grant: Grant) -> None:
        if not grant.allowed:
            return
        if grant.shared:
            await self._give_back(grant.key, grant.cost)
        else:
            await self.local.refund(grant)

    async def _give_back(self, counter: str, cost: int) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._counters.add(counter, -cost)
        except Exception as exc:  # noqa: BLE001 - a lost refund only makes the limit stricter for a window
            log.warning("ratelimit.refund_lost", limit=self.name, error=type(exc).__name__)

    async def _closed_total(self, counter: str, deadline: float) -> int:
        """A closed window's total: read once, then kept (only refunds could still change it)."""
        total = self._previous.get(counter)
        if total is None:
            async with asyncio.timeout_at(deadline):
                total = await self._counters.get(counter)
            self._previous[counter] = total
            if len(self._previous) > self._max_cached:
                self._previous.popitem(last=False)
        return total

    def _wait(self, previous: int, current: int, cost: int, elapsed: float) -> float:
        """Seconds until a request of ``cost`` would be allowed, if nothing else is spent meanwhile."""
        spent = current - cost  # what the windows hold once this request's add is given back
        if spent + cost <= self.burst and previous > 0:
            # the previous window's share has to shrink: p * (1 - (e + x) / W) + spent + cost <= burst
            wait = self.window * (1 - (self.burst - spent - cost) / previous) - elapsed
        else:
            # this window alone is over: wait for it to become the previous one and shrink enough
            share = 1 - (self.burst - cost) / spent if spent > 0 else 0.0
            wait = (self.window - elapsed) + self.window * max(0.0, share)
        return max(wait, 0.01)
