"""``inkstream audit KIND ID``: an aggregate's history, straight from the log."""

from __future__ import annotations

import orjson
from rich.console import Console
from rich.table import Table

from adapters.cli.connect import cli_context
from adapters.runtime.settings import Settings
from domain.base import utc
from domain.ids import is_id


async def audit_command(settings: Settings, kind: str, aggregate_id: str, *, as_json: bool) -> int:
    console = Console()
    if kind == "schema" and not is_id(aggregate_id):
        from domain.schema import schema_aggregate_id

        aggregate_id = schema_aggregate_id(aggregate_id.split("@")[0])
    elif kind == "user" and "@" in aggregate_id:
        from domain.user import account_id

        aggregate_id = account_id(aggregate_id)
    if not is_id(aggregate_id):
        console.print(f"not an id: {aggregate_id!r}")
        return 2
    async with cli_context(settings) as ctx:
        records = await ctx.store.load(kind, aggregate_id)
    if not records:
        console.print(f"no events for {kind} {aggregate_id}")
        return 1
    if as_json:
        for r in records:
            data = {k: v for k, v in r.data.items() if k != "password_hash"}
            print(orjson.dumps({"position": r.position, "type": r.type, "version": r.version, "actor": r.actor,
                                "at": utc(r.at), "command_id": r.command_id, "data": data}).decode())
        return 0
    table = Table(title=f"{kind} {aggregate_id}")
    for column in ("position", "version", "type", "actor", "at", "data"):
        table.add_column(column, overflow="fold")
    for r in records:
        data = {k: v for k, v in r.data.items() if k != "password_hash"}
        table.add_row(str(r.position), str(r.version), r.type, r.actor or "", utc(r.at),
                      orjson.dumps(data).decode()[:200])
    console.print(table)
    return 0
