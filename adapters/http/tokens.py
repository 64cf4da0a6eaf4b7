"""JWT access tokens: HS256 only, so neither ``alg: none`` nor key confusion gets in.

A verified token is remembered (by its exact text, until its ``exp``) in a
bounded LRU: a client sends the same token with every request, and decoding
and checking it again was 7% of a create's CPU and 14% of a read's. Only
tokens that passed every check are remembered, and their expiry is checked
on every use, so the cache can only ever answer what a fresh verify would.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from adapters.http.errors import TokenExpired, Unauthorized
from domain.ids import is_id, new_id

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: int


class TokenService:
    def __init__(self, secret: str, lifetime_seconds: int = 3600, leeway_seconds: int = 0,
                 cache_size: int = 10_000) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters")
        self._secret = secret
        self._lifetime = lifetime_seconds
        self._leeway = leeway_seconds
        self._verified: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._cache_size = cache_size

    def issue(self, user_id: str, now: float | None = None) -> IssuedToken:
        iat = int(now if now is not None else time.time())
        exp = iat + self._lifetime
        claims = {"sub": user_id, "iat": iat, "exp": exp, "jti": new_id()}
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), exp)

    def verify(self, token: str, now: float | None = None) -> str:
        """The token's subject; ``TokenExpired`` or ``Unauthorized`` otherwise."""
        return self.verify_until(token, now)[0]

    def verify_until(self, token: str, now: float | None = None) -> tuple[str, float]:
        """The token's subject and the moment (epoch seconds) it stops being valid: a live
        connection authenticated with it ends then."""
        known = self._verified.get(token)
        if known is not None:
            subject, exp = known
            if (time.time() if now is None else now) < exp + self._leeway:
                self._verified.move_to_end(token)
                return subject, float(exp + self._leeway)
            del self._verified[token]
            raise TokenExpired("the token is past its expiry")
        subject, exp = self._decode(token)
        self._verified[token] = (subject, exp)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return subject, float(exp + self._leeway)

    def _decode(self, token: str) -> tuple[str, int]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "iat", "exp", "jti"]},
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("the token is past its expiry") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc
        sub = claims.get("sub")
        if not is_id(sub):
            raise Unauthorized("invalid token subject")
        return str(sub), int(claims["exp"])
