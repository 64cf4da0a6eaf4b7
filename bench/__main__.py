"""Every benchmark, one after the other, in one process run: ``python -m bench [--quick]``.

A bench is a module of this package with ``async def run(quick: bool) -> rows``;
each prints its table and writes bench/results/<name>.json. ``make bench`` runs this.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

from adapters.runtime.event_loop import run as run_event_loop

# These run first, in this order; any other bench module found here runs after them.
FIRST = ("event_store", "http")


def bench_names() -> list[str]:
    found = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    return [n for n in FIRST if n in found] + [n for n in found if n not in FIRST]


def main(argv: list[str] | None = None) -> None:
    names = bench_names()
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run every inkstream benchmark.")
    parser.add_argument("--quick", action="store_true", help="short runs")
    parser.add_argument("--only", action="append", choices=names, help="run just this bench (repeatable)")
    args = parser.parse_args(argv)
    for name in args.only or names:
        run = getattr(importlib.import_module(f"bench.{name}"), "run", None)
        if run is None:
            continue
        run_event_loop(run(quick=args.quick))


if __name__ == "__main__":
    main()
