"""Book exports are heavy (an 8 MiB book is about 0.1 s of the server's loop): a user runs two at once.

The two exports are held open by a client that does not read them: the book's
HTML (every ``<`` escaped to ``&lt;``) is far larger than the sockets' buffers, so the server's handler waits
in the middle of writing, holding its slot, until the client reads on.
"""

from __future__ import annotations

import asyncio

import aiohttp

from tests.support.sdk import SignUp
from tests.support.wire import Answer, bearer, problem

CHAPTERS = 32
CHAPTER = "<" * 250_000


async def test_a_third_export_at_once_is_429_and_others_are_not_held(http: aiohttp.ClientSession,
                                                                      sign_up: SignUp) -> None:
    heavy, other = await sign_up("exporter"), await sign_up("reader")
    book = await heavy.create_book("Heavy")
    for i in range(CHAPTERS):
        await heavy.add_chapter(book.id, f"c{i}", CHAPTER)
    small = await other.create_book("Small", chapters=[{"title": "One", "content": "short"}])
    url, params = f"/v1/books/{book.id}/export", {"format": "html", "min_position": str(heavy.last_position)}

    held = [await http.get(url, params=params, headers=bearer(heavy)) for _ in range(2)]
    try:
        assert [r.status for r in held] == [200, 200]
        async with http.get(url, params=params, headers=bearer(heavy)) as r:  # not call(): it waits out a 429
            third = Answer(r.status, await r.json(content_type=None), r.headers)
        body = problem(third, 429, "rate_limited", "rate limit exceeded")
        assert "at most 2 exports at a time" in body["detail"] and third.headers["Retry-After"] == "1"
        # someone else's export, and the exporter's own light requests, are not held by it
        assert b"short" in await other.export_book(small.id, "text")
        assert (await heavy.get_book(book.id)).title == "Heavy"
        # reading on finishes both, whole
        sizes = await asyncio.gather(*(r.read() for r in held))
        assert [len(s) for s in sizes] == [len(sizes[0])] * 2 and len(sizes[0]) > CHAPTERS * len(CHAPTER) * 4
    finally:
        for r in held:
            r.close()
    # with its slots free again, the same export answers
    async with http.get(url, params=params, headers=bearer(heavy)) as again:
        assert again.status == 200 and len(await again.read()) == len(sizes[0])
