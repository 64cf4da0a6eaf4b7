"""Every limit the HTTP layer applies, handed to it as one object."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from adapters.http.export_memory import ExportMemory
from adapters.http.in_flight import InFlight
from adapters.http.login_guard import KnownAddresses, LoginGuard, Marks
from adapters.http.ratelimit import Counters, Limiter, LocalLimiter, SharedLimiter


def user_key(user_id: str) -> str:
    """The key a user's requests are counted under on ``Limiters.user``."""
    return f"user:{user_id}"


def written_key(user_id: str) -> str:
    """The key a user's written bytes are counted under on ``Limiters.written``."""
    return f"written:{user_id}"


@dataclass(frozen=True, slots=True)
class Limiters:
    """Per user (valid token), per client address (everything else), the login guard, and how many
    book exports and pages of blobs, schema versions or history run at once (per user and per
    process: always this process's own count)."""

    user: Limiter
    anonymous: Limiter
    written: Limiter
    """Bytes of request bodies per user: what one account may add to the log, whatever its request rate."""
    login: LoginGuard
    exports: InFlight
    pages: InFlight
    events_per_request: int = 100
    """What a user's request may read from the log (events) for the price of one request on ``user``;
    each further this many cost one more (``adapters.http.middleware``)."""
    export_stall_seconds: float = 300.0
    """How long an export's client may take nothing of what it was sent before the export is given up:
    a stalled export holds its book in memory and one of its user's export slots."""
    export_memory: ExportMemory = field(default_factory=lambda: ExportMemory(256 * 1024 * 1024))
    """What all exports of the process may hold in memory at once."""
    sign_ins: Limiter = field(default_factory=lambda: LocalLimiter(25.0, 200))
    """Password checks (login, register) per client (``middleware.address_key``): a process makes a few
    dozen a second for everyone, and the limit on a client's requests allows more than that."""

    async def bill_requests(self, user_id: str, count: int) -> None:
        """Work done for the user outside their requests (jobs their blob changes triggered), as requests."""
        await self.user.bill(user_key(user_id), count)

    async def bill_written(self, user_id: str, size: int) -> None:
        """Bytes written to the log for the user outside their requests (job outputs, migrated blobs)."""
        await self.written.bill(written_key(user_id), size)


@dataclass(frozen=True, slots=True)
class LimitSettings:
    rate_per_second: float
    burst: float
    anonymous_rate_per_second: float
    anonymous_burst: float
    login_failures_per_minute: float
    login_account_failures_per_minute: float
    known_address_seconds: float
    exports_per_user: int = 2
    exports_per_process: int = 4
    pages_per_user: int = 2
    pages_per_process: int = 4
    pages_waiting_per_user: int = 32
    write_bytes_per_second: float = 1024.0 * 1024
    write_bytes_burst: float = 64.0 * 1024 * 1024
    events_per_request: int = 100
    export_stall_seconds: float = 300.0
    export_memory_bytes: int = 256 * 1024 * 1024
    sign_in_rate_per_second: float = 25.0
    sign_in_burst: float = 200


def _exports(s: LimitSettings) -> InFlight:
    return InFlight("exports", s.exports_per_user, s.exports_per_process)


def _pages(s: LimitSettings) -> InFlight:
    """Pages wait for their turn: clients ask for a few at once as a matter of course."""
    return InFlight("page reads", s.pages_per_user, s.pages_per_process, s.pages_waiting_per_user)


def local_limiters(s: LimitSettings) -> Limiters:
    """Limits kept in this process: right for one API process, and for tools without NATS."""
    return Limiters(
        user=LocalLimiter(s.rate_per_second, s.burst),
        anonymous=LocalLimiter(s.anonymous_rate_per_second, s.anonymous_burst),
        written=LocalLimiter(s.write_bytes_per_second, s.write_bytes_burst),
        login=LoginGuard.local(s.login_failures_per_minute, s.login_account_failures_per_minute,
                               s.known_address_seconds),
        exports=_exports(s),
        pages=_pages(s),
        events_per_request=s.events_per_request,
        export_stall_seconds=s.export_stall_seconds,
        export_memory=ExportMemory(s.export_memory_bytes),
        sign_ins=LocalLimiter(s.sign_in_rate_per_second, s.sign_in_burst),
    )


def shared_limiters(s: LimitSettings, counters: Counters, marks: Marks, secret: str, timeout: float) -> Limiters:
    """The same limits held across every API process that shares ``counters`` and ``marks``.

    ``secret`` (every API process has the same: the JWT secret) keys the hashes
    under which users, addresses and accounts are counted."""
    key = hashlib.sha256(b"inkstream shared limits\x00" + secret.encode()).digest()

    def limiter(name: str, rate: float, burst: float, *, remember_refusals: bool = False) -> SharedLimiter:
        return SharedLimiter(name, rate, burst, counters, key, timeout=timeout, remember_refusals=remember_refusals)

    per_pair, per_account = s.login_failures_per_minute, s.login_account_failures_per_minute
    return Limiters(
        # requests of one each, never refunded: a refusal holds until its Retry-After in each process
        user=limiter("user", s.rate_per_second, s.burst, remember_refusals=True),
        anonymous=limiter("anonymous", s.anonymous_rate_per_second, s.anonymous_burst, remember_refusals=True),
        written=limiter("written", s.write_bytes_per_second, s.write_bytes_burst),
        login=LoginGuard(
            limiter("login-pair", per_pair / 60.0, per_pair),
            limiter("login-account", per_account / 60.0, per_account),
            KnownAddresses(s.known_address_seconds, marks, key, timeout=timeout),
        ),
        exports=_exports(s),
        pages=_pages(s),
        events_per_request=s.events_per_request,
        export_stall_seconds=s.export_stall_seconds,
        export_memory=ExportMemory(s.export_memory_bytes),
        sign_ins=limiter("sign-in", s.sign_in_rate_per_second, s.sign_in_burst, remember_refusals=True),
    )
