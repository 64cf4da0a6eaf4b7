"""A blob's history comes in pages (``GET /v1/blobs/{id}/history``, through the SDK).

A blob edited many times, with large data, must not be answered in one piece:
pages of ``limit`` events (1-500, default 50) and at most ``HISTORY_PAGE_BYTES``
of event data, oldest first, walked with ``next_cursor`` (null on the last
page). Malformed limits and cursors are a 400 as on every list.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import orjson
import pytest

from adapters.client import BadRequestError, ForbiddenError, InkstreamClient, NotFoundError
from adapters.http.models_content import HISTORY_PAGE_BYTES
from domain.ids import new_id
from tests.support.stores import own_log_system  # noqa: F401 - this module's `system`: a log of its own
from tests.support.sdk import SignUp, fails
from tests.support.system import RunningSystem
from tests.support.wire import call, problem

VERSIONS = 80


def cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


async def edited(ink: InkstreamClient, versions: int, data: Any = None) -> tuple[str, list[int]]:
    """A blob with ``versions`` events (created, then updated), and their positions."""
    blob = await ink.create_blob(data if data is not None else {"v": 1})
    positions = [blob.position]
    for v in range(2, versions + 1):
        positions.append((await ink.update_blob(blob.id, data if data is not None else {"v": v})).position)
    return blob.id, positions


async def walk(ink: InkstreamClient, blob_id: str, **params: Any) -> list[list[int]]:
    """The positions of each page, following ``next_cursor`` to the end."""
    pages: list[list[int]] = []
    next_cursor: str | None = None
    while True:
        page = await ink.blob_history(blob_id, cursor=next_cursor, **params)
        pages.append([item.position for item in page.items])
        next_cursor = page.next_cursor
        if next_cursor is None:
            return pages
        assert len(pages) <= VERSIONS, "the cursor does not move on"


async def test_the_pages_of_a_long_history_hold_every_event_once_in_order(sign_up: SignUp) -> None:
    ink = await sign_up("history", retry_rate_limited=True)
    blob_id, positions = await edited(ink, VERSIONS)

    pages = await walk(ink, blob_id, limit=7)
    assert [len(p) for p in pages] == [7] * (VERSIONS // 7) + [VERSIONS % 7]
    assert [p for page in pages for p in page] == positions

    first = await ink.blob_history(blob_id)  # the default page: 50 events, and a cursor
    assert [i.position for i in first.items] == positions[:50] and first.next_cursor is not None
    assert [i.version for i in first.items] == list(range(1, 51))
    assert first.items[0].type == "Blob.Created" and {i.type for i in first.items[1:]} == {"Blob.Updated"}
    rest = await ink.blob_history(blob_id, cursor=first.next_cursor)
    assert [i.position for i in rest.items] == positions[50:] and rest.next_cursor is None
    assert [i.data["data"] for i in rest.items] == [{"v": v} for v in range(51, VERSIONS + 1)]

    # a page that ends exactly at the last event says so: no cursor to an empty page
    assert await walk(ink, blob_id, limit=VERSIONS // 2) == [positions[:VERSIONS // 2], positions[VERSIONS // 2:]]
    whole = await ink.blob_history(blob_id, limit=500)
    assert [i.position for i in whole.items] == positions and whole.next_cursor is None
    assert [i.position async for i in ink.iter_pages(ink.blob_history, blob_id, limit=9)] == positions

    short_id, short = await edited(ink, 2)  # a short history is one page, as before
    page = await ink.blob_history(short_id)
    assert [i.position for i in page.items] == short and page.next_cursor is None


async def test_a_page_ends_early_when_its_events_data_would_pass_the_byte_cap(sign_up: SignUp) -> None:
    ink = await sign_up("history-large", retry_rate_limited=True)
    text = "x" * 500_000
    blob_id, positions = await edited(ink, 6, {"text": text})  # about 3 MB of event data: 2 MiB, then the rest
    sizes = {}
    pages = []
    next_cursor: str | None = None
    while True:
        page = await ink.blob_history(blob_id, limit=500, cursor=next_cursor)
        assert page.items, "every page holds at least one event"
        for item in page.items:
            sizes[item.position] = len(orjson.dumps(item.data))  # the event's data as the log holds it
        pages.append([item.position for item in page.items])
        next_cursor = page.next_cursor
        if next_cursor is None:
            break
    assert [p for page in pages for p in page] == positions
    assert len(pages) == 2
    assert sum(sizes[p] for p in pages[0]) <= HISTORY_PAGE_BYTES < sum(sizes[p] for p in pages[0]) + sizes[pages[1][0]]


async def test_history_limits_and_cursors_are_checked(http: aiohttp.ClientSession, sign_up: SignUp) -> None:
    ink = await sign_up("history-bounds")
    blob_id, positions = await edited(ink, 3)
    for limit in (0, 501, -1):
        with fails(BadRequestError):
            await ink.blob_history(blob_id, limit=limit)
    path = f"/v1/blobs/{blob_id}/history"
    problem(await call(http, "GET", path, ink, params={"limit": "many"}), 400, "bad_request", "bad request")
    page = await ink.blob_history(blob_id, limit=1)
    assert page.next_cursor is not None
    for forged in ("garbage!", "%%%", cursor(["x"]), cursor([0]), cursor([-5]), cursor([True]), cursor([2**63]),
                   cursor([1.5]), cursor([positions[0], 1]), cursor(["2026-01-01T00:00:00+00:00", new_id()]),
                   cursor([[positions[0]]]), cursor({"p": 1})):
        problem(await call(http, "GET", path, ink, params={"cursor": forged}), 400, "bad_request",
                "bad request: invalid cursor")
    with fails(BadRequestError, "bad request: invalid cursor"):
        await ink.blob_history(blob_id, cursor="garbage!")

    assert [i.position for i in (await ink.blob_history(blob_id, limit=1, cursor=page.next_cursor)).items] == \
        positions[1:2]
    beyond = await ink.blob_history(blob_id, cursor=cursor([2**62]))
    assert beyond.items == [] and beyond.next_cursor is None

    # a cursor opens no one else's history, nor an unknown blob's
    other = await sign_up("history-other")
    with fails(ForbiddenError):
        await other.blob_history(blob_id, cursor=page.next_cursor)
    with fails(ForbiddenError):
        await other.blob_history(blob_id)
    with fails(NotFoundError):
        await ink.blob_history(new_id(), cursor=page.next_cursor)


@pytest.mark.parametrize("limit", [1, 50, 500])
async def test_the_answer_keeps_its_shape(http: aiohttp.ClientSession, sign_up: SignUp, limit: int) -> None:
    """``{items: [{position, type, version, actor, at, data}], next_cursor}``, on the wire."""
    ink = await sign_up("history-wire")
    blob_id, positions = await edited(ink, 2)
    answer = await call(http, "GET", f"/v1/blobs/{blob_id}/history", ink, params={"limit": str(limit)})
    assert answer.status == 200, answer.body
    assert set(answer.body) == {"items", "next_cursor"}
    assert [set(i) for i in answer.body["items"]] == [{"position", "type", "version", "actor", "at", "data"}] * min(
        limit, 2)
    assert (answer.body["next_cursor"] is None) == (limit >= 2)


async def test_someone_elses_history_is_refused_after_reading_only_its_first_event(
    system: RunningSystem, sign_up: SignUp, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The owner is checked on the event that created the blob before a page is read (a page may be
    2 MiB): a 403 costs one event read from the log, on the first page as with a cursor."""
    ink = await sign_up("history-owner")
    blob_id, positions = await edited(ink, 4, {"text": "x" * 200_000})
    page = await ink.blob_history(blob_id, limit=1)
    other = await sign_up("history-stranger")
    store = system.services.store
    loads: list[dict[str, Any]] = []
    original = store.load

    async def spy(aggregate_type: str, aggregate_id: str, **bounds: Any) -> Any:
        records = await original(aggregate_type, aggregate_id, **bounds)
        if aggregate_id == blob_id:
            loads.append({**bounds, "sizes": [r.size for r in records]})
        return records

    monkeypatch.setattr(store, "load", spy)
    for next_cursor in (None, page.next_cursor):
        loads.clear()
        with fails(ForbiddenError):
            await other.blob_history(blob_id, cursor=next_cursor)
        assert loads and all(load.get("limit") == 1 and len(load["sizes"]) <= 1 for load in loads), loads
    loads.clear()
    mine = await ink.blob_history(blob_id)  # the owner: the first event, then the page
    assert [i.position for i in mine.items] == positions and [load.get("limit") for load in loads] == [1, 51]


async def test_history_checks_min_position_and_consistency_like_every_query_then_ignores_them(
    http: aiohttp.ClientSession, sign_up: SignUp,
) -> None:
    ink = await sign_up("history-consistency")
    blob_id, positions = await edited(ink, 2)
    path = f"/v1/blobs/{blob_id}/history"
    for params in ({"consistency": "bogus"}, {"min_position": "-1"}, {"min_position": "soon"},
                   {"min_position": str(2**63)}):
        problem(await call(http, "GET", path, ink, params=params), 400, "bad_request", "bad request")
        # as on the blob itself
        problem(await call(http, "GET", f"/v1/blobs/{blob_id}", ink, params=params), 400, "bad_request",
                "bad request")
    for params in ({"consistency": "strong"}, {"consistency": "eventual"}, {"min_position": "0"},
                   {"min_position": str(positions[-1])}, {"min_position": str(positions[-1] + 10**6)}):
        answer = await call(http, "GET", path, ink, params=params)
        assert answer.status == 200, (params, answer.body)
        assert [i["position"] for i in answer.body["items"]] == positions
