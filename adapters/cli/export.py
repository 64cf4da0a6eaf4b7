"""``inkstream export BOOK_ID --format F -o FILE``: a book from the read model to a file.

Like a query over HTTP, it first waits (bounded by ``read_wait_seconds``) for
the books projection to reach the log's last position, so a book created just
before is found; when the projectors are not running it says so and exports
what the read model holds. The file is streamed chunk by chunk into a
temporary file beside the target and renamed into place, so a failed export
never leaves half a file under the requested name. ``-o -`` writes to stdout.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg

from adapters.cli.connect import cli_context
from adapters.export import Renderer, get_format
from adapters.postgres.pool import connect
from adapters.postgres.queries.books import get_book
from adapters.runtime.settings import Settings
from domain.errors import ValidationFailed
from domain.ids import is_id

PROJECTION = "books"


def _say(message: str) -> None:
    print(message, file=sys.stderr)


async def _wait_for_books(conn: asyncpg.Connection, target: int, timeout: float) -> bool:
    """True once the books projection has reached ``target`` (False after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        reached = await conn.fetchval("SELECT position FROM projection_checkpoints WHERE name = $1", PROJECTION)
        if reached is not None and int(reached) >= target:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


def _write(fmt_render: Renderer, book: dict[str, Any], sink: BinaryIO) -> int:
    written = 0
    for chunk in fmt_render(book):
        sink.write(chunk)
        written += len(chunk)
    return written


def _write_file(fmt_render: Renderer, book: dict[str, Any], output: Path) -> int:
    target = output.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as sink:
            written = _write(fmt_render, book, sink)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return written


async def export_command(settings: Settings, book_id: str, fmt: str, output: str) -> int:
    try:
        export_format = get_format(fmt)
    except ValidationFailed as exc:
        _say(f"inkstream export: {exc}")
        return 2
    if not is_id(book_id):
        _say(f"inkstream export: no book {book_id!r} (not a book id)")
        return 1
    async with cli_context(settings) as ctx:
        target = await ctx.store.last_position()
        conn = await connect(ctx.database_url)
        try:
            if not await _wait_for_books(conn, target, settings.read_wait_seconds):
                _say(f"inkstream export: warning: the books read model has not reached log position {target}; "
                     "exporting what it holds (are the projectors running?)")
            book = await get_book(conn, book_id)
        finally:
            await conn.close()
    if book is None:
        _say(f"inkstream export: no book {book_id} (unknown or deleted)")
        return 1
    if output == "-":
        written = _write(export_format.render, book, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        _say(f"wrote {written} bytes of {export_format.name} to stdout")
        return 0
    path = Path(output)
    written = await asyncio.to_thread(_write_file, export_format.render, book, path)
    print(f"wrote {path.resolve()} ({export_format.name}, {written} bytes)")
    return 0
