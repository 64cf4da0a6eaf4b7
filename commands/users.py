"""Registration and login, decided on the log alone (no read model needed)."""

from __future__ import annotations

from dataclasses import dataclass

from commands.ports import PasswordHasher
from commands.repository import Context, Repository, Saved
from domain.errors import ConcurrencyError, Conflict, Unauthorized
from domain.user import User, account_id, check_registration


@dataclass(frozen=True, slots=True)
class Authenticated:
    user_id: str


class UserCommands:
    def __init__(self, repo: Repository, hasher: PasswordHasher) -> None:
        self._repo = repo
        self._hasher = hasher

    async def register(self, ctx: Context, email: str, password: str, username: str) -> Saved[User]:
        check_registration(email, password, username)
        password_hash = await self._hasher.hash(password)
        try:
            return await self._repo.execute(
                User, None, lambda _: User.register(email, username, password_hash), ctx
            )
        except ConcurrencyError as exc:
            raise Conflict("email already registered") from exc

    async def login(self, email: str, password: str) -> Authenticated:
        """The same 401 for an unknown email and a wrong password, in the same time."""
        saved = await self._repo.get(User, account_id(email))
        if saved is None:
            await self._hasher.verify_dummy(password)
            raise Unauthorized("wrong email or password")
        if not await self._hasher.verify(saved.aggregate.password_hash, password):
            raise Unauthorized("wrong email or password")
        return Authenticated(saved.aggregate.user_id)
