"""The verified-token cache answers only what a fresh verify would: same subject, expiry checked every time."""

from __future__ import annotations

import time

import pytest

from adapters.http.errors import TokenExpired, Unauthorized
from adapters.http.tokens import TokenService
from domain.ids import new_id

SECRET = "s" * 40


def test_a_cached_token_expires_on_time() -> None:
    tokens = TokenService(SECRET, lifetime_seconds=60)
    user = new_id()
    issued = tokens.issue(user)
    assert tokens.verify(issued.token) == user
    assert tokens.verify(issued.token) == user  # from the cache
    with pytest.raises(TokenExpired):
        tokens.verify(issued.token, now=issued.expires_at)


def test_only_valid_tokens_are_remembered() -> None:
    tokens = TokenService(SECRET)
    other = TokenService("o" * 40)
    forged = other.issue(new_id()).token
    for _ in range(2):
        with pytest.raises(Unauthorized):
            tokens.verify(forged)


def test_the_cache_is_bounded() -> None:
    tokens = TokenService(SECRET, cache_size=3)
    issued = [tokens.issue(new_id(), now=time.time()) for _ in range(5)]
    for t in issued:
        tokens.verify(t.token)
    assert len(tokens._verified) == 3
