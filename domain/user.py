"""Users: one aggregate per normalised email address.

The aggregate id is a hash of the normalised email, so the log's
expected-sequence-0 check alone makes registration unique; the public
``user_id`` is a separate UUIDv7 (it reveals nothing about the address).
"""

from __future__ import annotations

import re
import unicodedata
from uuid import UUID

from eventsourcing.domain import event

from domain.base import InkAggregate
from domain.errors import FieldError, ValidationFailed, ensure_storable, storable_errors
from domain.ids import hashed_id, new_id

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


def normalise_email(email: str) -> str:
    return unicodedata.normalize("NFKC", email).strip().lower()


def account_id(email: str) -> str:
    return str(hashed_id("user-email", normalise_email(email)))


def check_registration(email: object, password: object, username: object) -> None:
    """Every problem of a registration (422); values that are not even strings are refused the same way."""
    errors: list[FieldError] = []
    if (not isinstance(email, str) or len(email) > 254 or storable_errors(email)
            or not _EMAIL.match(normalise_email(email))):
        errors.append(FieldError("/email", "email must be a valid email address"))
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        errors.append(FieldError("/password", f"password must be at least {MIN_PASSWORD} characters"))
    elif len(password) > MAX_PASSWORD:
        errors.append(FieldError("/password", f"password must be at most {MAX_PASSWORD} characters"))
    if not isinstance(username, str) or not username.strip() or len(username) > 64:
        errors.append(FieldError("/username", "username must be 1 to 64 characters"))
    else:
        errors += storable_errors(username, "/username")
    if errors:
        raise ValidationFailed("invalid registration", errors)


class User(InkAggregate):
    TYPE = "user"

    @classmethod
    def create_id(cls, email: str) -> UUID:  # type: ignore[override]
        return hashed_id("user-email", normalise_email(email))

    @event("Registered")
    def __init__(self, user_id: str, email: str, username: str, password_hash: str) -> None:
        self.user_id = user_id
        self.email = email
        self.username = username
        self.password_hash = password_hash

    @classmethod
    def register(cls, email: str, username: str, password_hash: str) -> "User":
        """After ``check_registration``; ``password_hash`` comes from the hasher, never from a request."""
        ensure_storable(password_hash, "/password", "the password hash")
        return cls(user_id=new_id(), email=normalise_email(email), username=username.strip(), password_hash=password_hash)
