"""Every limit the HTTP layer applies, handed to it as one object."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.http.login_guard import LoginGuard
from adapters.http.ratelimit import TokenBucketLimiter


@dataclass(frozen=True, slots=True)
class Limiters:
    """Per user (valid token), per client address (everything else), and the login guard."""

    user: TokenBucketLimiter
    anonymous: TokenBucketLimiter
    login: LoginGuard
