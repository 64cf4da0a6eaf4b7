"""Request, query and answer models of the Migrations routes.

Requests forbid unknown fields and use strict types (a wrong type is a 400);
value rules (a semantic version, a chain of transforms between the versions)
are the domain's (422). Answers are ``projections.documents.MigrationOut``.
"""

from __future__ import annotations

from pydantic import Field

from adapters.http.models import Answer, ListQuery, Request
from projections.documents import MigrationOut


class MigrationIn(Request):
    schema_id: str = Field(description="The target version, `name@version` (a bare name: its latest). The schema "
                                       "must be yours.")
    from_version: str = Field(description="The source version of the same schema; your blobs on "
                                          "`name@from_version` move.")
    bucket_id: str | None = Field(default=None, description="Only blobs in this bucket (yours) and its sub-buckets.")
    dry_run: bool = Field(default=True, description="Transform and validate every blob, write nothing (the "
                                                    "default). `false` writes.")
    user_id: str | None = Field(default=None, description="Optional; when given it must be your own user id (else "
                                                          "403).")


class MigrationListQuery(ListQuery):
    pass


class MigrationChanged(MigrationOut):
    """A command's answer: ``position`` is that command's (the run's last change)."""


class MigrationPage(Answer):
    items: list[MigrationOut]
    next_cursor: str | None = None
