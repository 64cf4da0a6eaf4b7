"""``inkstream migrate SCHEMA_ID --from VERSION [--bucket B] [--apply]``: a migration run, with progress.

A user's command, so it speaks to the HTTP API as that user through the SDK
(``adapters/client``): the same checks, the same run-once rule, the same
runner as ``POST /v1/migrations``. The server is ``--url`` (default
``INKSTREAM_URL``, else this machine's ``INKSTREAM_HTTP_PORT``); the user is
``INKSTREAM_TOKEN``, or ``--email`` with the password in
``INKSTREAM_PASSWORD``. Dry by default: ``--apply`` writes. A progress bar
(rich, on stderr) follows the run's counts; it ends with the counts and the
first errors. Exit status: 0 when the run completed with no failed blob, 1
when some failed (or the run did), 2 when the request was refused.
"""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapters.client import InkstreamClient, InkstreamError
from adapters.runtime.settings import Settings
from projections.documents import MigrationOut

SHOWN_ERRORS = 10


def _base_url(settings: Settings, url: str | None) -> str:
    return url or os.environ.get("INKSTREAM_URL") or f"http://127.0.0.1:{settings.http_port}"


async def migrate_command(settings: Settings, schema_id: str, from_version: str, bucket_id: str | None,
                          apply: bool, *, url: str | None = None, email: str | None = None,
                          timeout: float = 3600.0) -> int:
    console = Console(stderr=True)
    token = os.environ.get("INKSTREAM_TOKEN")
    async with InkstreamClient(_base_url(settings, url), token=token) as ink:
        try:
            if email is not None:
                await ink.login(email, os.environ.get("INKSTREAM_PASSWORD", ""))
            elif not token:
                console.print("inkstream migrate: set INKSTREAM_TOKEN, or give --email with INKSTREAM_PASSWORD")
                return 2
            run = await ink.request_migration(schema_id, from_version, bucket_id=bucket_id, dry_run=not apply)
        except InkstreamError as exc:
            console.print(f"inkstream migrate: refused: {exc}", markup=False, highlight=False)
            return 2
        what = "dry run" if run.dry_run else "migration"
        console.print(f"{what} {run.id}: {run.from_schema_id} → {run.schema_id}"
                      + (f" in bucket {bucket_id}" if bucket_id else ""), markup=False, highlight=False)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task(what, total=None, counts="")

            def show(current: MigrationOut) -> None:
                done = current.migrated + current.failed + current.skipped
                progress.update(task, completed=done, total=max(current.total, done) or None,
                                counts=f"{current.status}: {current.failed} failed, {current.skipped} skipped")

            try:
                run = await ink.wait_for_migration(run.id, timeout=timeout, on_progress=show)
            except (InkstreamError, TimeoutError) as exc:
                console.print(f"inkstream migrate: {exc}", markup=False, highlight=False)
                return 1
    verb = "would migrate" if run.dry_run else "migrated"
    console.print(f"{run.status}: {run.total} blobs, {verb} {run.migrated}, failed {run.failed}, "
                  f"skipped {run.skipped}")
    for error in run.errors[:SHOWN_ERRORS]:
        console.print(f"  {error.blob_id} {error.path or '/'}: {error.message}", markup=False, highlight=False)
    if len(run.errors) > SHOWN_ERRORS or run.failed > len(run.errors[:SHOWN_ERRORS]):
        console.print(f"  … GET /v1/migrations/{run.id} keeps the first {len(run.errors)} errors")
    if run.error:
        console.print(f"the run failed: {run.error}", markup=False)
    if run.dry_run and run.status == "completed":
        console.print("nothing was written; --apply to migrate")
    return 0 if run.status == "completed" and run.failed == 0 else 1
