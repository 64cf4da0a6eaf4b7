"""``inkstream replay``: rebuild read models from the log with a progress bar."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.cli.connect import cli_running
from adapters.postgres.rebuild import rebuild
from adapters.runtime.settings import Settings
from adapters.runtime.bootstrap import projections


async def replay_command(settings: Settings, only: list[str] | None) -> int:
    console = Console(stderr=True)
    chosen = [p for p in projections() if not only or p.name in only]
    unknown = set(only or []) - {p.name for p in chosen}
    if unknown:
        console.print(f"unknown projection(s): {', '.join(sorted(unknown))}; "
                      f"known: {', '.join(p.name for p in projections())}")
        return 2
    async with cli_running(settings) as running:
        store, codec = running.services.store, running.services.codec
        total = await store.last_position()
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

                reached = await rebuild(projection, dsn=running.database_url, store=store, codec=codec,
                                        progress=report)
                progress.update(task, completed=max(reached, 1), total=max(reached, 1))
    console.print(f"rebuilt {', '.join(p.name for p in chosen)} up to position {total}")
    return 0
