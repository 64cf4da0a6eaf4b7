"""Auth routes: register, login, me."""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from adapters.http.api import Api, actor, command_answer, context, read_body, resource_answer
from adapters.http.keys import container
from adapters.http.models import LoginIn, LoginOut, MeOut, RegisterIn, RegisterOut
from adapters.http.reads import read_model
from domain.base import utc
from domain.errors import NotFound, RateLimited
from domain.user import account_id


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
    c = container(request)
    body = await read_body(request, LoginIn)
    account = f"login:{account_id(body.email)}"
    wait = c.login_limiter.peek(account)
    if wait > 0:
        raise RateLimited("too many failed logins for this account", retry_after=wait)
    try:
        with c.tracing.span("command User.login"):
            user = await c.users.login(body.email, body.password)
    except Exception:
        c.login_limiter.take(account)
        raise
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
                  auth=False, errors=(401,))(login)
    api.operation("GET", "/v1/auth/me", summary="The authenticated user", tag="auth", response=MeOut,
                  errors=(404,))(me)
