"""JWT access tokens: HS256 only, so neither ``alg: none`` nor key confusion gets in."""

from __future__ import annotations

import time
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
    def __init__(self, secret: str, lifetime_seconds: int = 3600, leeway_seconds: int = 0) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters")
        self._secret = secret
        self._lifetime = lifetime_seconds
        self._leeway = leeway_seconds

    def issue(self, user_id: str, now: float | None = None) -> IssuedToken:
        iat = int(now if now is not None else time.time())
        exp = iat + self._lifetime
        claims = {"sub": user_id, "iat": iat, "exp": exp, "jti": new_id()}
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=ALGORITHM), exp)

    def verify(self, token: str) -> str:
        """The token's subject; 401 ``token_expired`` or ``unauthorized`` otherwise."""
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
        return str(sub)
