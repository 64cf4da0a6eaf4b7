"""Auth routes: register, login, me."""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from adapters.http.api import Api, actor, command_answer, context, read_body, read_query, resource_answer
from adapters.http.errors import RateLimited
from adapters.http.keys import BUS, LIMITERS, READS, TOKENS
from adapters.http.middleware import address_key, client_of
from adapters.http.models import LoginIn, LoginOut, ReadQuery, RegisterIn, RegisterOut
from commands.ports import Unavailable
from commands.users import LogIn, RegisterUser
from domain.errors import NotFound
from domain.user import account_id
from projections.documents import UserOut

_LOGIN_LIMITS = (
    "Failed logins are limited (429 with `Retry-After`, before the password is checked): "
    "per account and client address, `INKSTREAM_LOGIN_FAILURES_PER_MINUTE` (default 10); per account over "
    "all addresses, `INKSTREAM_LOGIN_ACCOUNT_FAILURES_PER_MINUTE` (default 100), which does not apply to an "
    "address the account logged in from successfully in the last `INKSTREAM_LOGIN_KNOWN_ADDRESS_DAYS` (30): "
    "guesses from elsewhere cannot lock the owner out where they usually log in. A successful login counts "
    "nothing. Every request from the address also counts against the per-address limit of unauthenticated "
    "traffic (`INKSTREAM_ANONYMOUS_RATE_LIMIT_PER_SECOND`; IPv6 addresses by their /64, which one client "
    "usually holds whole). Every limit is counted across all API processes. Passwords are checked a few at a "
    "time (argon2id, about 30 ms each): when more sign-ins wait than the process checks in about half a "
    "second, the next is a 503 `unavailable` with `Retry-After`, and counts as no failed login."
)


_SIGN_IN_CHECKS = (
    "The password is hashed with argon2id (about 30 ms of a core): a client (an address; an IPv6 /64) may "
    "sign in (login or register) 25 times a second in bursts of 200 (`INKSTREAM_SIGN_IN_RATE_PER_SECOND`, "
    "`INKSTREAM_SIGN_IN_BURST`), past that a 429; when more wait in the process than it checks in about "
    "half a second, a 503 `unavailable` with `Retry-After`."
)


def _issued(request: web.Request, user_id: str) -> dict[str, str]:
    issued = request.app[TOKENS].issue(user_id)
    expires_at = datetime.fromtimestamp(issued.expires_at, tz=timezone.utc)
    return {"user_id": user_id, "token": issued.token, "expires_at": expires_at.isoformat().replace("+00:00", "Z")}


async def _sign_in_allowed(request: web.Request) -> None:
    """A password check is about 30 ms of a core: a client gets ``INKSTREAM_SIGN_IN_*`` of them (429)."""
    grant = await request.app[LIMITERS].sign_ins.take(address_key(request.remote))
    if not grant.allowed:
        raise RateLimited("too many sign-ins from this client: slow down", retry_after=grant.wait)


async def register(request: web.Request) -> web.Response:
    body = await read_body(request, RegisterIn)
    await _sign_in_allowed(request)
    saved = await request.app[BUS].handle(RegisterUser(body.email, body.password, body.username), context(request))
    return command_answer(_issued(request, saved.aggregate.user_id), saved.position, status=201)


async def login(request: web.Request) -> web.Response:
    """A try is reserved before the password is checked (see ``LoginGuard``); the client is its address,
    an IPv6 client its /64 (``address_key``), for the guard as for the limits."""
    body = await read_body(request, LoginIn)
    limiters = request.app[LIMITERS]
    await _sign_in_allowed(request)
    attempt = await limiters.login.reserve(account_id(body.email), client_of(request.remote))
    try:
        user = await request.app[BUS].handle(LogIn(body.email, body.password), context(request))
    except Unavailable:
        await limiters.login.undecided(attempt)
        raise
    await limiters.login.succeeded(attempt)
    return resource_answer(_issued(request, user.user_id))


async def me(request: web.Request) -> web.Response:
    user_id = actor(request)
    query = read_query(request, ReadQuery)
    model = await request.app[READS].read(("users",), query.min_position, query.consistency)
    found = await model.user(user_id)
    if found is None:
        raise NotFound("user not found")
    return resource_answer(found)


def register_routes(api: Api) -> None:
    api.operation("POST", "/v1/auth/register", summary="Register a user", tag="auth", body=RegisterIn,
                  response=RegisterOut, status=201, auth=False, errors=(403, 409, 422, 429, 503),
                  description=_SIGN_IN_CHECKS)(register)
    api.operation("POST", "/v1/auth/login", summary="Log in", tag="auth", body=LoginIn, response=LoginOut,
                  auth=False, errors=(401, 429, 503), description=_LOGIN_LIMITS + " " + _SIGN_IN_CHECKS)(login)
    api.operation("GET", "/v1/auth/me", summary="The authenticated user", tag="auth", response=UserOut,
                  query=ReadQuery, errors=(400, 404))(me)
