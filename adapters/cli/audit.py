"""``inkstream audit KIND ID``: an aggregate's history, straight from the log.

``ID`` is what a user of the API knows: a blob, bucket, book, processor or job
id; a schema's name (or ``name@version``); a user's ``user_id`` or email
address. Password
hashes never leave the log through here.

The history is printed as it is read, a bounded batch at a time
(``commands.repository.pages``), never held whole: users make histories long (a
blob edited thousands of times). ``--json`` prints a line per event; the table
is one table however many batches it takes (``adapters/cli/history_table.py``).
When the output goes to a file or a pipe and the history takes more than one
batch, how far the read got shows on stderr, as ``inkstream replay`` shows its
progress (on a terminal the rows themselves show it, and a progress bar would
be drawn among them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from adapters.cli.connect import cli_running
from adapters.cli.history_table import HistoryTable
from adapters.runtime.settings import Settings
from commands.ports import EventStore
from commands.repository import FOLD_BYTES, pages
from domain.ids import is_id
from domain.recorded import Recorded
from domain.schema import schema_aggregate_id
from domain.user import account_id

KINDS = ("user", "blob", "bucket", "schema", "book", "processor", "job", "migration")
COLUMNS = ("position", "version", "type", "actor", "at", "data")
MIB = 1024 * 1024


def _shown(data: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in data.items() if k != "password_hash"}


def _json_line(r: Recorded) -> str:
    return orjson.dumps({"position": r.position, "type": r.type, "version": r.version, "actor": r.actor,
                         "at": r.at, "command_id": r.command_id, "data": _shown(r.data)},
                        option=orjson.OPT_UTC_Z).decode()


def _row(r: Recorded) -> tuple[str, ...]:
    return (str(r.position), str(r.version), r.type, r.actor or "", r.at.isoformat(),
            orjson.dumps(_shown(r.data)).decode()[:200])


class _Progress:
    """Events and bytes read so far, on stderr, shown from the second batch on (a history of one
    batch is printed at once)."""

    def __init__(self, progress: Progress | None, what: str) -> None:
        self._progress = progress
        self._what = what
        self._task: TaskID | None = None
        self._events = 0
        self._bytes = 0
        self._batches = 0

    def advance(self, batch: list[Recorded]) -> None:
        self._events += len(batch)
        self._bytes += sum(r.size for r in batch)
        self._batches += 1
        if self._progress is None or self._batches < 2:
            return
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(self._what, total=None, read="")
        self._progress.update(self._task, completed=self._events, read=f"{self._bytes / MIB:,.1f} MiB")


@contextmanager
def _progress(console: Console | None, what: str) -> Iterator[_Progress]:
    if console is None:
        yield _Progress(None, what)
        return
    # stdout is a file or a pipe here: nothing to redirect around the bar
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} events"),
                        TextColumn("{task.fields[read]}"), TimeElapsedColumn(), console=console,
                        redirect_stdout=False, redirect_stderr=False)
    try:
        yield _Progress(progress, what)
    finally:
        progress.stop()


async def print_history(
    store: EventStore, kind: str, aggregate_id: str, *, title: str, as_json: bool, out: Console,
    progress: Console | None = None, max_bytes: int = FOLD_BYTES,
) -> int:
    """Print the aggregate's events to ``out`` as they are read, a batch of at most ``max_bytes`` at a
    time, each let go before the next is read; how many there were (nothing is printed for none).
    ``progress``: where to show how far the read got, once it takes more than one batch."""
    count = 0
    table = None if as_json else HistoryTable(out, title, COLUMNS)
    with _progress(progress, f"{kind} {aggregate_id}") as shown:
        async for batch in pages(store, kind, aggregate_id, max_bytes=max_bytes):
            if table is None:
                out.file.write("".join(_json_line(r) + "\n" for r in batch))
            else:
                table.add([_row(r) for r in batch])
            count += len(batch)
            shown.advance(batch)
            del batch  # not held while the next batch is read
    if table is not None:
        table.close()
    return count


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
        printed = await print_history(running.services.store, kind, aggregate_id, title=f"{kind} {given_id}",
                                      as_json=as_json, out=console,
                                      progress=None if sys.stdout.isatty() else Console(stderr=True))
    if not printed:
        console.print(f"no events for {kind} {given_id}")
        return 1
    return 0
