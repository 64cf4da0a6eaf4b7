"""``inkstream replay [--store postgres|mongo]``: rebuild read models from the log with a progress bar.

Each projection is replayed into fresh tables (PostgreSQL) or collections
(MongoDB) and swapped in; the live ones keep answering meanwhile."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.cli.connect import cli_running
from adapters.mongo import rebuild as mongo_rebuild
from adapters.postgres import rebuild as postgres_rebuild
from adapters.runtime.bootstrap import projections
from adapters.runtime.lifecycle import Running
from adapters.runtime.settings import Settings
from adapters.runtime.stores import StoreKind
from projections.changes import Projection


async def _rebuild(running: Running, kind: StoreKind, projection: Projection, report: Callable[[int, int], None]) -> int:
    store, codec = running.services.store, running.services.codec
    if kind == "mongo":
        mongo = running.stores["mongo"].mongo
        assert mongo is not None
        return await mongo_rebuild.rebuild(projection, mongo=mongo, store=store, codec=codec, progress=report)
    return await postgres_rebuild.rebuild(projection, dsn=running.database_url, store=store, codec=codec,
                                          progress=report)


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
            for projection in chosen:
                task = progress.add_task(projection.name, total=max(total, 1), rate="")

                def report(position: int, target: int, task=task) -> None:  # type: ignore[no-untyped-def]
                    progress.update(task, completed=position, total=max(target, 1))
                    t = progress.tasks[task]
                    if t.speed:
                        progress.update(task, rate=f"{t.speed:,.0f} events/s")

                reached = await _rebuild(running, kind, projection, report)
                progress.update(task, completed=max(reached, 1), total=max(reached, 1))
    console.print(f"rebuilt {', '.join(p.name for p in chosen)} in {kind} up to position {total}")
    return 0
