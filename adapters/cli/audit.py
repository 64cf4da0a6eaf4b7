"""``inkstream audit KIND ID``: an aggregate's history, straight from the log.

``ID`` is what a user of the API knows: a blob, bucket, book, processor or job
id; a schema's name (or ``name@version``); a user's ``user_id`` or email
address. Password
hashes never leave the log through here.
"""

from __future__ import annotations

import orjson
from rich.console import Console
from rich.table import Table

from adapters.cli.connect import cli_running
from adapters.runtime.settings import Settings
from domain.ids import is_id
from domain.schema import schema_aggregate_id
from domain.user import account_id

KINDS = ("user", "blob", "bucket", "schema", "book", "processor", "job", "migration")


def _shown(data: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in data.items() if k != "password_hash"}


async def audit_command(settings: Settings, kind: str, given_id: str, *, as_json: bool) -> int:
    console = Console()
    aggregate_id = given_id
    if kind == "schema" and not is_id(given_id):
        aggregate_id = schema_aggregate_id(given_id.split("@")[0])
    elif kind == "user" and "@" in given_id:
        aggregate_id = account_id(given_id)
    if not is_id(aggregate_id):
        console.print(f"not an id: {given_id!r}")
        return 2
    async with cli_running(settings) as running:
        if kind == "user":  # a public user_id names no subject: the account id (hash of the email) does
            aggregate_id = await running.services.reads.model.user_account(aggregate_id) or aggregate_id
        records = await running.services.store.load(kind, aggregate_id)
    if not records:
        console.print(f"no events for {kind} {given_id}")
        return 1
    if as_json:
        for r in records:
            print(orjson.dumps({"position": r.position, "type": r.type, "version": r.version, "actor": r.actor,
                                "at": r.at, "command_id": r.command_id, "data": _shown(r.data)},
                               option=orjson.OPT_UTC_Z).decode())
        return 0
    table = Table(title=f"{kind} {given_id}")
    for column in ("position", "version", "type", "actor", "at", "data"):
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(str(r.position), str(r.version), r.type, r.actor or "", r.at.isoformat(),
                      orjson.dumps(_shown(r.data)).decode()[:200])
    console.print(table)
    return 0
