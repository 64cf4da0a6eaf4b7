"""Users read model: profile rows for ``/v1/auth/me`` (never the password hash)."""

from __future__ import annotations

from typing import ClassVar

from domain.recorded import Recorded
from projections.changes import Change, Upsert


class UsersProjection:
    name: ClassVar[str] = "users"
    tables: ClassVar[tuple[str, ...]] = ("users",)

    def changes(self, record: Recorded) -> list[Change]:
        if record.type == "User.Registered":
            d = record.data
            return [
                Upsert(
                    "users",
                    ("user_id",),
                    {
                        "user_id": d["user_id"],
                        "account_id": record.aggregate_id,
                        "email": d["email"],
                        "username": d["username"],
                        "created_at": record.at,
                        "updated_at": record.at,
                        "version": record.version,
                        "position": record.position,
                    },
                )
            ]
        return []
