"""The row cache serves a row only while no heard commit has changed it since it was read."""

from __future__ import annotations

import asyncio

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.postgres.row_cache import EVERYTHING_CHANGED, MAX_CHANGED_BYTES, RowCache, changed_rows
from projections.changes import Delete, Update, Upsert


def cache(max_bytes: int = 1 << 20) -> RowCache:
    rows = RowCache(max_bytes)
    rows.keep_table("blobs", "id")
    rows.keep_table("users", "user_id")
    rows.hearing(True)
    return rows


class Store:
    """What PostgreSQL holds: each fetch counted, its answer the value at the time it is called."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.fetches = 0

    def fetch(self, key: str):  # noqa: ANN201 - a coroutine function for RowCache.row
        async def go() -> tuple[str, int] | None:
            self.fetches += 1
            value = self.values.get(key)
            return None if value is None else (value, 100)
        return go


def said(*changes: object) -> bytes:
    return changed_rows(changes)  # type: ignore[arg-type]


# -- what a commit says it changed -------------------------------------------------------------------


def test_a_commit_names_each_row_by_its_key_or_by_the_one_column_it_was_picked_by() -> None:
    payload = orjson.loads(said(
        Upsert("blobs", ("id",), {"id": "b1", "data": 1}),
        Update("blobs", {"id": "b2"}, {"data": 2}),
        Delete("users", {"user_id": "u1"}),
    ))
    assert payload == {"blobs": {"id": ["b1", "b2"]}, "users": {"user_id": ["u1"]}}


def test_rows_picked_by_several_columns_or_by_a_value_that_is_not_text_make_their_table_unknown() -> None:
    payload = orjson.loads(said(
        Upsert("blob_buckets", ("blob_id", "bucket_id"), {"blob_id": "b1", "bucket_id": "k1"}),
        Update("jobs", {"position": 12}, {"status": "done"}),
        Update("blobs", {"id": "b1"}, {"data": 1}),
    ))
    assert payload == {"blob_buckets": "*", "jobs": "*", "blobs": {"id": ["b1"]}}


def test_too_many_rows_for_one_notification_make_their_tables_unknown() -> None:
    changes = [Update("blobs", {"id": f"blob-{i:026d}"}, {"data": i}) for i in range(1000)]
    encoded = said(*changes, Delete("users", {"user_id": "u"}))
    assert len(encoded) <= MAX_CHANGED_BYTES
    assert orjson.loads(encoded) == {"blobs": "*", "users": "*"}


# -- serving and keeping -------------------------------------------------------------------------------


async def test_a_row_read_once_is_served_again_without_asking_the_store() -> None:
    rows, store = cache(), Store()
    store.values["b1"] = "v1"
    assert await rows.row("blobs", "b1", store.fetch("b1")) == "v1"
    assert await rows.row("blobs", "b1", store.fetch("b1")) == "v1"
    assert store.fetches == 1 and rows.hits == 1


async def test_a_heard_change_drops_the_row_and_the_next_read_asks_again() -> None:
    rows, store = cache(), Store()
    store.values["b1"] = "v1"
    await rows.row("blobs", "b1", store.fetch("b1"))
    store.values["b1"] = "v2"
    rows.changed(said(Update("blobs", {"id": "b1"}, {"data": "v2"})))
    assert await rows.row("blobs", "b1", store.fetch("b1")) == "v2"
    assert store.fetches == 2


async def test_a_change_to_another_row_or_an_unkept_table_leaves_the_row_kept() -> None:
    rows, store = cache(), Store()
    store.values["b1"] = "v1"
    await rows.row("blobs", "b1", store.fetch("b1"))
    rows.changed(said(Update("blobs", {"id": "b2"}, {"data": 0}), Upsert("books", ("id",), {"id": "b1"})))
    await rows.row("blobs", "b1", store.fetch("b1"))
    assert store.fetches == 1


async def test_a_change_that_names_no_row_of_a_kept_table_forgets_that_table_only() -> None:
    rows, store = cache(), Store()
    store.values.update(b1="v1", u1="me")
    await rows.row("blobs", "b1", store.fetch("b1"))
    await rows.row("users", "u1", store.fetch("u1"))
    rows.changed(said(Update("blobs", {"owner_id": "u1"}, {"data": 0})))
    await rows.row("blobs", "b1", store.fetch("b1"))
    await rows.row("users", "u1", store.fetch("u1"))
    assert store.fetches == 3  # blobs asked again, users not


async def test_a_rebuild_or_a_notice_of_another_shape_forgets_everything() -> None:
    for notice in (EVERYTHING_CHANGED, b"{not json", b'{"users": {"user_id": [1, [2]]}}', b'{"users": 3}'):
        rows, store = cache(), Store()
        store.values["u1"] = "me"
        await rows.row("users", "u1", store.fetch("u1"))
        rows.changed(notice)
        await rows.row("users", "u1", store.fetch("u1"))
        assert store.fetches == 2


async def test_a_change_heard_while_the_row_was_being_read_keeps_it_out() -> None:
    """The query may have read before or after that commit: the answer is passed on, not kept."""
    rows = cache()
    release = asyncio.Event()
    fetches = 0

    async def slow() -> tuple[str, int]:
        nonlocal fetches
        fetches += 1
        await release.wait()
        return "old", 100

    reading = asyncio.create_task(rows.row("blobs", "b1", slow))
    await asyncio.sleep(0)
    rows.changed(said(Update("blobs", {"id": "b1"}, {"data": "new"})))
    release.set()
    assert await reading == "old"
    assert len(rows) == 0
    release.clear()
    second = asyncio.create_task(rows.row("blobs", "b1", slow))
    await asyncio.sleep(0)
    rows.forget_everything()  # a rebuild, a lost connection: the same
    release.set()
    await second
    assert len(rows) == 0 and fetches == 2


async def test_nothing_is_served_or_kept_while_the_store_is_not_heard() -> None:
    rows, store = cache(), Store()
    store.values["u1"] = "me"
    await rows.row("users", "u1", store.fetch("u1"))
    rows.hearing(False)  # notices of this time are lost
    await rows.row("users", "u1", store.fetch("u1"))
    await rows.row("users", "u1", store.fetch("u1"))
    assert store.fetches == 3 and len(rows) == 0
    rows.hearing(True)
    await rows.row("users", "u1", store.fetch("u1"))
    await rows.row("users", "u1", store.fetch("u1"))
    assert store.fetches == 4


async def test_missing_rows_are_not_kept() -> None:
    rows, store = cache(), Store()
    assert await rows.row("blobs", "nope", store.fetch("nope")) is None
    assert await rows.row("blobs", "nope", store.fetch("nope")) is None
    assert store.fetches == 2 and len(rows) == 0


async def test_the_cache_keeps_to_its_bytes_least_recently_used_out_first() -> None:
    rows = cache(max_bytes=64 * 100)  # room for 64 rows of 100 bytes; one heavier is never kept

    def weighing(value: str, weight: int = 100):  # noqa: ANN202
        async def go() -> tuple[str, int]:
            return value, weight
        return go

    for i in range(64):
        await rows.row("blobs", f"k{i}", weighing(f"k{i}"))
    await rows.row("blobs", "k0", weighing("not asked"))  # k0 is used: k1 is now the oldest
    await rows.row("blobs", "new", weighing("new"))
    assert len(rows) == 64 and rows.weight == 6400
    assert await rows.row("blobs", "k0", weighing("asked")) == "k0"
    assert await rows.row("blobs", "k1", weighing("k1 again")) == "k1 again"
    await rows.row("blobs", "huge", weighing("huge", 101))
    assert await rows.row("blobs", "huge", weighing("huge again", 101)) == "huge again"


# -- the property: whatever the interleaving, a served row is what the store held when last heard --


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, str]]:
    steps = st.one_of(
        st.tuples(st.just("write"), st.sampled_from("xyz")),
        st.tuples(st.just("hear"), st.just("")),
        st.tuples(st.just("start"), st.sampled_from("xyz")),
        st.tuples(st.just("finish"), st.just("")),
        st.tuples(st.just("read"), st.sampled_from("xyz")),
    )
    return draw(st.lists(steps, max_size=40))


@settings(max_examples=300, deadline=None)
@given(histories())
def test_a_served_row_is_never_older_than_every_change_heard(history: list[tuple[str, str]]) -> None:
    """Commits change the store and are heard later, in order; reads are sent (taking the store's
    value then) and answered later. After each step, every row the cache would serve must be the
    store's value as of the last heard commit or a later one: what read-your-writes relies on."""

    async def run() -> None:
        rows = cache()
        store = {k: 0 for k in "xyz"}
        heard = dict(store)  # the store as of the last heard commit
        unheard: list[tuple[str, int]] = []
        out: list[tuple[asyncio.Task[object], asyncio.Future[None]]] = []

        def reader(key: str) -> tuple[asyncio.Task[object], asyncio.Future[None]]:
            answer = asyncio.get_running_loop().create_future()

            async def fetch() -> tuple[int, int]:
                value = store[key]  # the query's snapshot is taken when it is sent
                await answer
                return value, 10
            return asyncio.create_task(rows.row("blobs", key, fetch)), answer

        for step, key in history:
            if step == "write":
                store[key] += 1
                unheard.append((key, store[key]))
            elif step == "hear" and unheard:
                key, value = unheard.pop(0)
                heard[key] = value
                rows.changed(said(Update("blobs", {"id": key}, {"data": value})))
            elif step == "start":
                task, answer = reader(key)
                await asyncio.sleep(0)
                out.append((task, answer))
            elif step == "finish" and out:
                task, answer = out.pop(0)
                answer.set_result(None)
                await task
            elif step == "read":
                hits = rows.hits

                async def now(key: str = key) -> tuple[int, int]:
                    return store[key], 10
                got = await rows.row("blobs", key, now)
                if rows.hits > hits:  # served from the cache: at least what every heard commit wrote
                    assert got >= heard[key], (key, got, heard)
        for task, answer in out:
            answer.set_result(None)
            await task

    asyncio.run(run())
