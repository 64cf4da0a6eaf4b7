"""What the migration tests share: the seed's Task 12 schemas (user-profile 1.0.0 → 2.0.0) and a third version."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from typing import Any

from adapters.client import InkstreamClient

PROFILE_V1 = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "number"}}}
PROFILE_V2 = {"type": "object", "properties": {"name": {"type": "string"}, "birthYear": {"type": "number"},
                                                "email": {"type": "string"}}}
# Task 12's transform, as written.
TO_V2 = """
                function migrate(data) {
                    return {
                        name: data.name,
                        birthYear: new Date().getFullYear() - data.age,
                        email: ""
                    };
                }
            """
PROFILE_V3 = {"type": "object", "required": ["name", "birthYear", "email", "contact"],
              "properties": {"name": {"type": "string"}, "birthYear": {"type": "number"},
                             "email": {"type": "string"}, "contact": {"type": "string"}}}
TO_V3 = "function migrate(data) { var d = Object.assign({}, data); d.contact = d.email || d.name; return d; }"


def this_year() -> int:
    return datetime.datetime.now(datetime.timezone.utc).year


async def profile_schema(ink: InkstreamClient, *, v3: bool = False) -> str:
    """A fresh schema name with 1.0.0 and 2.0.0 (Task 12's migration), and 3.0.0 from 2.0.0 when asked."""
    name = f"user-profile-{uuid.uuid4().hex[:8]}"
    await ink.register_schema(name, "1.0.0", PROFILE_V1)
    await ink.register_schema(name, "2.0.0", PROFILE_V2, {"from_version": "1.0.0", "transform": TO_V2})
    if v3:
        await ink.register_schema(name, "3.0.0", PROFILE_V3, {"from_version": "2.0.0", "transform": TO_V3})
    return name


async def profiles(ink: InkstreamClient, name: str, count: int, *, bucket_ids: list[str] | None = None,
                   start: int = 0) -> list[Any]:
    """``count`` blobs on ``name@1.0.0``: person i is ``20 + i % 50`` years old."""
    gate = asyncio.Semaphore(8)

    async def one(i: int) -> Any:
        async with gate:
            return await ink.create_blob({"name": f"Person {i}", "age": 20 + i % 50}, f"{name}@1.0.0",
                                         bucket_ids=bucket_ids)

    return list(await asyncio.gather(*(one(i) for i in range(start, start + count))))
