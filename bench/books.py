"""Book export: time and memory peak for a 300-chapter, ~3 MB book in each format.

``python -m bench.books [--quick]``. The book is a dict as the books query
answers it, built before measuring; each run consumes the renderer's chunks
the way a streamed HTTP answer does (one at a time, nothing kept), so the
memory peak (tracemalloc, in its own run) is what the exporter itself holds.
Time is the median of several runs without tracemalloc.

Rows are printed as a table and written to bench/results/books.json.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import os
import platform
import random
import statistics
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from adapters.export import FORMATS
from adapters.runtime.event_loop import run as run_event_loop

RESULTS = Path(__file__).resolve().parent / "results" / "books.json"
CHAPTERS = 300
CHAPTER_CHARS = 10_000

_WORDS = (
    'the a of and to in ink stream river paper light night letter <b> & "quoted" it\'s '
    "chapter whisper garden stone window morning silence voice ]]> dream road"
).split()


def make_book(chapters: int = CHAPTERS, chars: int = CHAPTER_CHARS, seed: int = 7) -> dict[str, Any]:
    """Prose-like chapters with paragraphs, the odd markdown heading and characters every format escapes."""
    rng = random.Random(seed)
    items = []
    for n in range(1, chapters + 1):
        paragraphs: list[str] = []
        size = 0
        while size < chars:
            words = [rng.choice(_WORDS) for _ in range(rng.randint(40, 120))]
            paragraph = " ".join(words).capitalize() + "."
            if rng.random() < 0.05:
                paragraph = "# " + paragraph
            paragraphs.append(paragraph)
            size += len(paragraph) + 2
        content = "\n\n".join(paragraphs)[:chars]
        items.append(
            {"id": f"01a21288-fc6b-76a1-acf1-{n:012d}", "title": f"Part {n} <{n}>", "order": n, "content": content}
        )
    return {
        "id": "01a21288-fc6b-76a1-acf1-afec263865df",
        "title": "Benchmark Book",
        "metadata": {"author": "Bench", "language": "en"},
        "chapters": items,
        "owner_id": "01a21288-fc6b-76a1-acf1-000000000000",
        "version": 1,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }


def _consume(fmt: str, book: dict[str, Any]) -> tuple[int, int, int]:
    """Bytes, chunks and the largest chunk, keeping nothing."""
    total = chunks = largest = 0
    for chunk in FORMATS[fmt].render(book):
        total += len(chunk)
        chunks += 1
        largest = max(largest, len(chunk))
    return total, chunks, largest


def _baseline_text(book: dict[str, Any]) -> bytes:
    parts = [book["title"]]
    for n, c in enumerate(book["chapters"], 1):
        parts += ["", f"Chapter {n}: {c['title']}", "", c["content"]]
    return "\n".join(parts).encode()


def _baseline_markdown(book: dict[str, Any]) -> bytes:
    parts = [f"# {book['title']}"]
    for n, c in enumerate(book["chapters"], 1):
        parts += ["", f"## Chapter {n}: {c['title']}", "", c["content"]]
    return "\n".join(parts).encode()


def _baseline_html(book: dict[str, Any]) -> bytes:
    body = "".join(
        f"<h2>{html.escape(c['title'])}</h2><p>{html.escape(c['content'])}</p>" for c in book["chapters"]
    )
    return f"<!doctype html><title>{html.escape(book['title'])}</title>{body}".encode()


def _baseline_epub(book: dict[str, Any]) -> bytes:
    from ebooklib import epub  # the library a Python user would pick

    e = epub.EpubBook()
    e.set_identifier(book["id"])
    e.set_title(book["title"])
    e.set_language("en")
    items = []
    for n, c in enumerate(book["chapters"], 1):
        item = epub.EpubHtml(title=c["title"], file_name=f"c{n}.xhtml", lang="en")
        item.content = f"<h2>{html.escape(c['title'])}</h2><p>{html.escape(c['content'])}</p>"
        e.add_item(item)
        items.append(item)
    e.toc = items
    e.spine = ["nav", *items]
    e.add_item(epub.EpubNcx())
    e.add_item(epub.EpubNav())
    out = io.BytesIO()
    epub.write_epub(out, e)
    return out.getvalue()


BASELINES = {
    "text": ("one str.join in memory, no escaping", _baseline_text),
    "markdown": ("one str.join in memory, no escaping", _baseline_markdown),
    "html": ("html.escape + one join in memory", _baseline_html),
    "epub": ("EbookLib write_epub (in memory)", _baseline_epub),
}


def _time_and_peak(fn: Any, runs: int) -> tuple[float, int, Any]:
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return statistics.median(times), peak, result


def measure(fmt: str, book: dict[str, Any], runs: int) -> dict[str, Any]:
    elapsed, peak, (size, chunks, largest) = _time_and_peak(lambda: _consume(fmt, book), runs)
    label, baseline = BASELINES[fmt]
    base_elapsed, base_peak, _ = _time_and_peak(lambda: baseline(book), runs)
    return {
        "format": fmt,
        "ms": round(elapsed * 1000, 1),
        "MB/s": round(size / 1e6 / elapsed, 1),
        "output_kB": round(size / 1000),
        "chunks": chunks,
        "largest_chunk_kB": round(largest / 1000, 1),
        "peak_kB": round(peak / 1000),
        "baseline is": label,
        "base_ms": round(base_elapsed * 1000, 1),
        "base_peak_kB": round(base_peak / 1000),
        "ours/base ms": round(elapsed / base_elapsed, 2),
        "ours/base peak": round(peak / base_peak, 3),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    cells = [keys] + [[str(r[k]) for k in keys] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(keys))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def run(quick: bool = False) -> list[dict[str, Any]]:
    book = make_book()
    content_bytes = sum(len(c["content"].encode()) for c in book["chapters"])
    runs = 3 if quick else 7
    rows = [measure(fmt, book, runs) for fmt in FORMATS]
    print(f"\nBook export: {CHAPTERS} chapters, {content_bytes / 1e6:.2f} MB of content, median of {runs} runs")
    print(_table(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "bench": "books",
                "at": datetime.now(timezone.utc).isoformat(),
                "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()},
                "quick": quick,
                "chapters": CHAPTERS,
                "content_bytes": content_bytes,
                "runs": runs,
                "note": "time: median, chunks consumed and dropped; peak_kB: tracemalloc peak during one render",
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.books", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    run_event_loop(run(quick=parser.parse_args(argv).quick))


if __name__ == "__main__":
    main()
