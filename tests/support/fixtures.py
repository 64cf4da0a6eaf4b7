"""Seed Task 1's test data: schemas from tests/fixtures/schemas.json, loaded through the API."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from adapters.client import InkstreamClient

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schemas.json"


@dataclass(frozen=True)
class Seeded:
    owner_token: str
    schema_ids: dict[str, str]  # fixture name -> registered id (name@version)


async def load_schemas(base_url: str) -> Seeded:
    """Register each fixture schema under a run-unique name (names are global and owned)."""
    data = json.loads(FIXTURES.read_text())
    run = uuid.uuid4().hex[:8]
    async with InkstreamClient(base_url) as ink:
        owner = data["owner"]
        await ink.register(f"{owner['email_prefix']}-{run}@example.com", "fixtures-password", owner["username"])
        ids = {}
        for spec in data["schemas"]:
            created = await ink.register_schema(f"{spec['name']}-{run}", spec["version"], spec["schema"])
            ids[spec["name"]] = created.id
        assert ink.token is not None
        return Seeded(ink.token, ids)
