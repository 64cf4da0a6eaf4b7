"""Auth routes: register, login, me."""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from adapters.http.api import Api, actor, command_answer, context, read_body, resource_answer
from adapters.http.keys import container
from adapters.http.models import LoginIn, LoginOut, MeOut, RegisterIn, RegisterOut
from adapters.http.reads import read_model
from domain.base import utc
from domain.errors import NotFound, Unavailable
from domain.user import account_id


_LOGIN_LIMITS = (
    "Failed logins are limited (429 with `Retry-After`, before the password is checked): "
    "per account and client address, `INKSTREAM_LOGIN_FAILURES_PER_MINUTE` (default 10); per account over "
    "all addresses, `INKSTREAM_LOGIN_ACCOUNT_FAILURES_PER_MINUTE` (default 100), which does not apply to an "
    "address the account logged in from successfully in the last `INKSTREAM_LOGIN_KNOWN_ADDRESS_DAYS` (30): "
    "guesses from elsewhere cannot lock the owner out where they usually log in. A successful login counts "
    "nothing. Every request from the address also counts against the per-address limit of unauthenticated "
    "traffic (`INKSTREAM_ANONYMOUS_RATE_LIMIT_PER_SECOND`)."
)


def _expiry(ts: int) -> str:
    return utc(datetime.fromtimestamp(ts, tz=timezone.utc))


async def register(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, RegisterIn)
    with c.tracing.span("command User.register"):
        saved = await c.users.register(context(request), body.email, body.password, body.username)
    issued = c.tokens.issue(saved.aggregate.user_id)
    return command_answer(
        {"user_id": saved.aggregate.user_id, "token": issued.token, "expires_at": _expiry(issued.expires_at)},
        saved.position,
        status=201,
    )


async def login(request: web.Request) -> web.Response:
    """A try is reserved before the password is checked (see ``LoginGuard``)."""
    c = container(request)
    body = await read_body(request, LoginIn)
    attempt = c.login_guard.reserve(account_id(body.email), request.remote or "unknown")
    try:
        with c.tracing.span("command User.login"):
            user = await c.users.login(body.email, body.password)
    except Unavailable:
        c.login_guard.undecided(attempt)
        raise
    c.login_guard.succeeded(attempt)
    issued = c.tokens.issue(user.user_id)
    return resource_answer({"user_id": user.user_id, "token": issued.token, "expires_at": _expiry(issued.expires_at)})


async def me(request: web.Request) -> web.Response:
    user_id = actor(request)
    pool = await read_model(request, ["users"])
    row = await pool.fetchrow("SELECT user_id, email, username, created_at, version FROM users WHERE user_id = $1", user_id)
    if row is None:
        raise NotFound("user not found")
    return resource_answer(
        {"user_id": row["user_id"], "email": row["email"], "username": row["username"], "created_at": utc(row["created_at"])},
        row["version"],
    )


def register_routes(api: Api) -> None:
    api.operation("POST", "/v1/auth/register", summary="Register a user", tag="auth", body=RegisterIn,
                  response=RegisterOut, status=201, auth=False, errors=(403, 409, 422))(register)
    api.operation("POST", "/v1/auth/login", summary="Log in", tag="auth", body=LoginIn, response=LoginOut,
                  auth=False, errors=(401,), description=_LOGIN_LIMITS)(login)
    api.operation("GET", "/v1/auth/me", summary="The authenticated user", tag="auth", response=MeOut,
                  errors=(404,))(me)
