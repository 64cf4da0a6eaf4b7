"""Registration and login, decided on the log alone (no read model needed)."""

from __future__ import annotations

from dataclasses import dataclass

from commands.bus import Handler
from commands.ports import PasswordHasher
from commands.repository import Context, Repository, Saved
from domain.errors import ConcurrencyError, Conflict, WrongCredentials
from domain.user import User, account_id, check_registration


@dataclass(frozen=True, slots=True)
class RegisterUser:
    email: str
    password: str
    username: str


@dataclass(frozen=True, slots=True)
class LogIn:
    email: str
    password: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    user_id: str


class UserHandlers:
    def __init__(self, repo: Repository, hasher: PasswordHasher) -> None:
        self._repo = repo
        self._hasher = hasher

    def handlers(self) -> dict[type, Handler]:
        return {RegisterUser: self.register, LogIn: self.login}

    async def register(self, cmd: RegisterUser, ctx: Context) -> Saved[User]:
        check_registration(cmd.email, cmd.password, cmd.username)
        password_hash = await self._hasher.hash(cmd.password)
        try:
            return await self._repo.execute(
                User, None, lambda _: User.register(cmd.email, cmd.username, password_hash), ctx
            )
        except ConcurrencyError as exc:
            raise Conflict("email already registered") from exc

    async def login(self, cmd: LogIn, ctx: Context) -> Authenticated:
        """The same refusal for an unknown email and a wrong password, in the same time."""
        saved = await self._repo.get(User, account_id(cmd.email))
        if saved is None:
            await self._hasher.verify_dummy(cmd.password)
            raise WrongCredentials("wrong email or password")
        if not await self._hasher.verify(saved.aggregate.password_hash, cmd.password):
            raise WrongCredentials("wrong email or password")
        return Authenticated(saved.aggregate.user_id)
