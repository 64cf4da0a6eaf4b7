"""``inkstream export BOOK_ID --format F -o FILE``: a book from the read model to a file.

Like a query over HTTP, it first waits (bounded by ``read_wait_seconds``) for
the books projection to reach the log's last position, through the same
read-your-writes watch the API uses, so a book created just before is found;
when the projectors are not running it says so and exports what the read
model holds. The file is streamed chunk by chunk into a temporary file beside
the target and renamed into place (off the event loop), so a failed export
never leaves half a file under the requested name. ``-o -`` writes to stdout.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from adapters.cli.connect import cli_running
from adapters.export import Renderer, get_format
from adapters.runtime.settings import Settings
from commands.ports import Unavailable
from domain.errors import ValidationFailed
from domain.ids import is_id

PROJECTION = "books"


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _write(render: Renderer, book: Mapping[str, Any], sink: BinaryIO) -> int:
    written = 0
    for chunk in render(book):
        sink.write(chunk)
        written += len(chunk)
    sink.flush()
    return written


def _umask() -> int:
    """The process's umask, read without setting it (``os.umask`` sets it, for every thread at once)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _write_file(render: Renderer, book: Mapping[str, Any], output: Path) -> int:
    """Written beside the target and renamed over it once on disk, so a crash leaves the old file or
    the new one whole; with the permissions a file the user creates gets (``mkstemp`` makes it 0600)."""
    target = output.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as sink:
            written = _write(render, book, sink)
            os.fsync(sink.fileno())
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
    async with cli_running(settings) as running:
        reads = running.services.reads
        try:
            model = await reads.read((PROJECTION,))
        except Unavailable:
            target = await running.services.store.last_position()
            _say(f"inkstream export: warning: the books read model has not reached log position {target}; "
                 "exporting what it holds (are the projectors running?)")
            model = reads.model
        found = await model.book(book_id)
    if found is None:
        _say(f"inkstream export: no book {book_id} (unknown or deleted)")
        return 1
    book = found.model_dump(mode="json")
    if output == "-":
        written = await asyncio.to_thread(_write, export_format.render, book, sys.stdout.buffer)
        _say(f"wrote {written} bytes of {export_format.name} to stdout")
        return 0
    path = Path(output)
    written = await asyncio.to_thread(_write_file, export_format.render, book, path)
    print(f"wrote {path.resolve()} ({export_format.name}, {written} bytes)")
    return 0
