"""Book exports are heavy (an 8 MiB book is about 0.1 s of the server's loop): a user runs two at once,
exports nobody reads hold no one else's, and they are given up once their client takes nothing for a while.

On a log and a database of its own: the limit is the HTTP layer's, whatever the store, and on the
session's shared log the MongoDB-answering system would project two 8 MiB books chapter by chapter into
SecantusDB (the test stand-in for MongoDB), minutes that every later MongoDB test would wait out.

The two exports are held open by a client that does not read them: the book's
HTML (every ``<`` escaped to ``&lt;``, 32 MB) is far larger than the sockets' buffers, so the server's handler
waits in the middle of writing, holding its slot, until the client reads on. The holding client's sockets
have a fixed receive buffer: Linux grows a loopback socket's buffer up to ``tcp_rmem``'s maximum (32 MiB
on these machines), and once it took the whole export, so that the handler finished and freed its slot.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from adapters.client import InkstreamClient
from tests.support.sdk import SignUp
from tests.support.servers import Database
from tests.support.system import RunningSystem, system_on_own_log
from tests.support.wire import Answer, bearer, problem



@pytest.fixture(scope="module")
async def system(database: Database) -> AsyncIterator[RunningSystem]:
    """This module's ``http`` and ``sign_up`` talk to a system on a nats-server of its own."""
    # the exports' bytes are charged to their users' request rate (test_export_charges.py): lifted here,
    # where the point is the slots, and each user exports several 32 MB documents
    async with system_on_own_log(database, run_jobs=False, export_stall_seconds=STALL, export_memory_mb=MEMORY_MB,
                                 rate_limit_per_second=10_000, rate_limit_burst=100_000) as (running, _):
        yield running


STALL = 5.0
"""Seconds an export's client may take nothing before the export is given up (300 by default)."""
MEMORY_MB = 44
"""What the process's exports may hold at once (256 MiB by default): four of the heavy books (about 9.5 MB
each as counted: 8 MB of text as Python strings, the chapters' objects, a rendered chapter waiting), not five."""


CHAPTERS = 32
CHAPTER = "<" * 250_000


async def _heavy_book(ink: InkstreamClient) -> str:
    book = await ink.create_book("Heavy")
    for i in range(CHAPTERS):
        await ink.add_chapter(book.id, f"c{i}", CHAPTER)
    return book.id


def _small_receive_buffer(addr_info: tuple[Any, ...]) -> socket.socket:
    """A socket whose receive buffer is set, which turns the kernel's growing of it off."""
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=kind, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    return sock


async def test_a_third_export_at_once_is_429_and_others_are_not_held(system: RunningSystem, http: aiohttp.ClientSession,
                                                                      sign_up: SignUp) -> None:
    heavy, stalled, other = await sign_up("exporter"), await sign_up("stalled"), await sign_up("reader")
    book_id, stalled_book_id = await _heavy_book(heavy), await _heavy_book(stalled)
    small = await other.create_book("Small", chapters=[{"title": "One", "content": "short"}])
    url, params = f"/v1/books/{book_id}/export", {"format": "html", "min_position": str(heavy.last_position)}
    stalled_url = f"/v1/books/{stalled_book_id}/export"
    stalled_params = {"format": "html", "min_position": str(stalled.last_position)}

    for ink, bid in ((heavy, book_id), (stalled, stalled_book_id)):  # the SDK waits out a read model behind
        assert len((await ink.get_book(bid)).chapters) == CHAPTERS
    # two users, each with two exports they never read: as many as the process renders at once (4)
    holder = aiohttp.ClientSession(base_url=system.base_url,
                                   connector=aiohttp.TCPConnector(socket_factory=_small_receive_buffer))
    held = [await holder.get(url, params=params, headers=bearer(heavy)) for _ in range(2)]
    held += [await holder.get(stalled_url, params=stalled_params, headers=bearer(stalled)) for _ in range(2)]
    try:
        assert [r.status for r in held] == [200] * 4
        async with http.get(url, params=params, headers=bearer(heavy)) as r:  # not call(): it waits out a 429
            raw = await r.read()
            assert r.status == 429, (r.status, r.headers, raw[:100], [h.status for h in held],
                                     [h.content.total_bytes for h in held])
            third = Answer(r.status, json.loads(raw), r.headers)
        body = problem(third, 429, "rate_limited", "rate limit exceeded")
        assert "at most 2 exports at a time" in body["detail"] and third.headers["Retry-After"] == "1"
        # someone else's export, and the exporter's own light requests, are not held by the stalled ones
        assert b"short" in await asyncio.wait_for(other.export_book(small.id, "text"), 10)
        assert (await heavy.get_book(book_id)).title == "Heavy"
        # reading on finishes them, whole
        sizes = await asyncio.gather(*(r.read() for r in held[:2]))
        assert [len(s) for s in sizes] == [len(sizes[0])] * 2 and len(sizes[0]) > CHAPTERS * len(CHAPTER) * 4
    finally:
        for r in held:
            r.close()
        await holder.close()
    # with its slots free again, the same export answers
    async with http.get(url, params=params, headers=bearer(heavy)) as again:
        assert again.status == 200 and len(await again.read()) == len(sizes[0])


async def test_exports_nobody_reads_are_given_up_and_free_their_book_and_slots(
        system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    """A stalled export held its whole book in memory and one of its user's two slots for as long as the
    client kept the connection open: a few accounts could hold gigabytes. Cut off after ``STALL`` seconds
    without the client taking anything, its slot is free again."""
    ink = await sign_up("abandoner")
    book_id = await _heavy_book(ink)
    assert len((await ink.get_book(book_id)).chapters) == CHAPTERS
    url, params = f"/v1/books/{book_id}/export", {"format": "html", "min_position": str(ink.last_position)}
    holder = aiohttp.ClientSession(base_url=system.base_url,
                                   connector=aiohttp.TCPConnector(socket_factory=_small_receive_buffer))
    held = [await holder.get(url, params=params, headers=bearer(ink)) for _ in range(2)]
    try:
        assert [r.status for r in held] == [200] * 2
        async with http.get(url, params=params, headers=bearer(ink)) as r:
            assert r.status == 429, "both slots are held"
        await asyncio.sleep(STALL + 3)
        async with http.get(url, params=params, headers=bearer(ink)) as again:
            whole = await again.read()
            assert again.status == 200 and len(whole) > CHAPTERS * len(CHAPTER) * 4, "the slots are free again"
        for r in held:  # the abandoned answers were cut off
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
    finally:
        for r in held:
            r.close()
        await holder.close()


async def test_a_slow_reader_that_keeps_reading_is_never_cut_off(
        system: RunningSystem, sign_up: SignUp) -> None:
    """Progress is what the client takes, however little: the transport's own buffer moves only when the
    kernel's send queue (megabytes) has room again, so a client reading 20 KB/s looked stalled and was cut
    off. Here a plain socket reads 2 KB/s for longer than the stall time and is still being served."""
    ink = await sign_up("slow-reader")
    book_id = await _heavy_book(ink)
    assert len((await ink.get_book(book_id)).chapters) == CHAPTERS
    host, port = system.base_url.removeprefix("http://").rsplit(":", 1)
    target = f"/v1/books/{book_id}/export?format=html&min_position={ink.last_position}"
    request = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {bearer(ink)['Authorization']}\r\n"
               "Connection: close\r\n\r\n").encode()

    def read_slowly() -> tuple[int, bytes]:
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(request)
            sock.settimeout(10)
            got, deadline = 0, time.monotonic() + STALL + 4
            while time.monotonic() < deadline:
                part = sock.recv(400)
                assert part, f"cut off after {got} bytes"
                got += len(part)
                time.sleep(0.2)
            return got, sock.recv(65536)

    got, more = await asyncio.to_thread(read_slowly)
    assert more, "still being served"
    assert got < CHAPTERS * len(CHAPTER) * 4, "a small part of it, read slowly"


async def test_exports_past_the_process_memory_for_them_are_503_and_a_lone_one_always_runs(
        system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    """Slots bound one account; the memory for exports bounds all of them: many accounts' stalled exports
    can make the next export wait its turn (503, ``Retry-After``), never take the process's memory."""
    users = [await sign_up(f"holder{n}") for n in range(3)]
    books = [await _heavy_book(ink) for ink in users]
    for ink, book_id in zip(users, books):
        assert len((await ink.get_book(book_id)).chapters) == CHAPTERS

    def export(n: int) -> tuple[str, dict[str, str]]:
        return f"/v1/books/{books[n]}/export", {"format": "html", "min_position": str(users[n].last_position)}

    holder = aiohttp.ClientSession(base_url=system.base_url,
                                   connector=aiohttp.TCPConnector(socket_factory=_small_receive_buffer))
    held = []
    try:
        for n in (0, 0, 1, 1):  # four books of about 9.5 MB held: 38 of the 44 MB
            url, params = export(n)
            held.append(await holder.get(url, params=params, headers=bearer(users[n])))
        assert [r.status for r in held] == [200] * 4
        url, params = export(2)
        async with http.get(url, params=params, headers=bearer(users[2])) as r:
            body = await r.json()
            assert r.status == 503 and body["code"] == "unavailable", body
            assert "too many exports" in body["detail"] and int(r.headers["Retry-After"]) >= 1
    finally:
        for r in held:
            r.close()
        await holder.close()
    await asyncio.sleep(1)  # the closed connections' handlers end and let their books go
    url, params = export(2)
    async with http.get(url, params=params, headers=bearer(users[2])) as r:
        assert r.status == 200 and len(await r.read()) > CHAPTERS * len(CHAPTER) * 4
