"""``inkstream replay [--store postgres|mongo]``: rebuild read models from the log with a progress bar.

Each projection is replayed into fresh tables (PostgreSQL) or collections
(MongoDB) and swapped in; the live ones keep answering meanwhile. PostgreSQL's
projections are rebuilt together from one read of the log (each event decoded
once), their fresh tables written with COPY (``adapters/postgres/rebuild.py``)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from adapters.cli.connect import cli_running
from adapters.mongo import rebuild as mongo_rebuild
from adapters.postgres import rebuild as postgres_rebuild
from adapters.runtime.bootstrap import projections
from adapters.runtime.lifecycle import Running
from adapters.runtime.settings import Settings
from adapters.runtime.stores import StoreKind
from projections.changes import Projection


async def _rebuild(running: Running, projection: Projection, report: Callable[[int, int], None]) -> int:
    """MongoDB: one projection at a time, on its own cursor."""
    mongo = running.stores["mongo"].mongo
    assert mongo is not None
    return await mongo_rebuild.rebuild(projection, mongo=mongo, store=running.services.store,
                                       codec=running.services.codec, progress=report)


async def replay_command(settings: Settings, only: list[str] | None, kind: StoreKind = "postgres") -> int:
    console = Console(stderr=True)
    chosen = [p for p in projections() if not only or p.name in only]
    unknown = set(only or []) - {p.name for p in chosen}
    if unknown:
        console.print(f"unknown projection(s): {', '.join(sorted(unknown))}; "
                      f"known: {', '.join(p.name for p in projections())}")
        return 2
    if kind == "mongo" and not settings.mongo_url:
        console.print("--store mongo needs INKSTREAM_MONGO_URL")
        return 2
    async with cli_running(settings, also_open=(kind,)) as running:
        total = await running.services.store.last_position()
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console,
        ) as progress:
            def reporter(task: TaskID) -> Callable[[int, int], None]:
                def report(position: int, target: int) -> None:
                    progress.update(task, completed=position, total=max(target, 1))
                    t = progress.tasks[task]
                    if t.speed:
                        progress.update(task, rate=f"{t.speed:,.0f} events/s")
                return report

            if kind == "postgres":  # every projection from one read of the log
                task = progress.add_task(", ".join(p.name for p in chosen), total=max(total, 1), rate="")
                try:
                    reached = await postgres_rebuild.rebuild_all(
                        chosen, dsn=running.database_url, store=running.services.store,
                        codec=running.services.codec, progress=reporter(task))
                except postgres_rebuild.ReadModelChanged as changed:
                    console.print(str(changed))
                    return 1
                top = max(reached.values(), default=total)
                progress.update(task, completed=max(top, 1), total=max(top, 1))
            else:
                for projection in chosen:
                    task = progress.add_task(projection.name, total=max(total, 1), rate="")
                    done = await _rebuild(running, projection, reporter(task))
                    progress.update(task, completed=max(done, 1), total=max(done, 1))
    console.print(f"rebuilt {', '.join(p.name for p in chosen)} in {kind} up to position {total}")
    return 0
