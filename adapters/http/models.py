"""Request and response models shared by the HTTP layer, the OpenAPI document and the SDK.

Requests forbid unknown fields and use strict types (a wrong type is a 400);
value rules (a valid email, a long enough password) are the domain's (422).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.limits import MAX_INT64, MAX_JSON_DEPTH

MAX_POSITION = MAX_INT64
DEPTH_NOTE = (f"Every JSON body nests objects and arrays at most {MAX_JSON_DEPTH} levels deep (else 400); "
              "text may not contain NUL or lone surrogates, numbers must be finite (else 422).")


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    errors: list[dict[str, str]] | None = None


class HealthOut(Answer):
    status: str
    version: str
    checks: dict[str, Any]


class ReadyOut(Answer):
    ready: bool


# -- auth ------------------------------------------------------------------------


class RegisterIn(Request):
    # The value rules are documented here and enforced by the domain (422),
    # so a wrong type stays a 400 and a bad value a 422.
    email: str = Field(json_schema_extra={"format": "email", "maxLength": 254})
    password: str = Field(json_schema_extra={"minLength": 8, "maxLength": 1024})
    username: str = Field(json_schema_extra={"minLength": 1, "maxLength": 64, "pattern": r"\S"})
    user_id: str | None = None


class RegisterOut(Answer):
    user_id: str
    token: str
    expires_at: str
    position: int


class LoginIn(Request):
    email: str
    password: str


class LoginOut(Answer):
    user_id: str
    token: str
    expires_at: str


# -- queries ---------------------------------------------------------------------


class ReadQuery(BaseModel):
    """Read-your-writes parameters every query accepts (see ``adapters.read_your_writes``)."""

    model_config = ConfigDict(extra="allow")
    min_position: int | None = Field(default=None, ge=0, le=MAX_POSITION,
                                     description="Wait until the read model has reached this log position "
                                                 "(400 when it is beyond the log's last position).")
    consistency: Literal["eventual", "strong"] | None = Field(
        default=None, description="`eventual` answers at once, without waiting for the read model."
    )


class ListQuery(ReadQuery):
    """Paging, on top of read-your-writes, for every list."""

    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, description="The previous page's `next_cursor`.")
