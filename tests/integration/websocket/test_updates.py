"""The seed's Task 6 and the pushes of every blob change, over ``/ws``."""

from __future__ import annotations

import aiohttp

from tests.integration.websocket.live import Live
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem


async def test_a_blob_created_elsewhere_arrives_as_blob_created_with_its_bucket(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    """Seed Task 6: connect, authenticate, subscribe to a bucket; a blob created in another connection arrives."""
    author = await sign_up("ws")
    bucket = await author.create_bucket("drafts", "folder")
    live = await Live.open(http, system.base_url)
    await live.send("auth", token=author.token)
    ok = await live.next()
    assert ok == {"type": "auth.ok", "data": {"user_id": author.user_id}}
    subscribed = await live.subscribe(bucket_id=bucket.id)
    assert subscribed["bucket_id"] == bucket.id and isinstance(subscribed["position"], int)

    async with aiohttp.ClientSession() as other:  # another connection, the same user
        from adapters.client import InkstreamClient

        writer = InkstreamClient(system.base_url, token=author.token, session=other)
        created = await writer.create_blob({"test": "data"}, bucket_ids=[bucket.id])

    update = await live.next()
    assert update["type"] == "blob.created"
    assert update["data"]["bucket_id"] == bucket.id
    assert update["data"]["blob_id"] == created.id
    assert update["data"]["position"] == created.position
    assert update["data"]["blob"]["data"] == {"test": "data"}
    assert update["data"]["blob"]["bucket_ids"] == [bucket.id]
    await live.close()


async def test_every_change_of_a_blob_is_pushed_in_order_and_a_move_reaches_both_buckets(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    author = await sign_up("ws")
    a = await author.create_bucket("a", "folder")
    b = await author.create_bucket("b", "folder")
    on_a, on_b = await Live.open(http, system.base_url, author.token), await Live.open(http, system.base_url, author.token)
    await on_a.subscribe(bucket_id=a.id)
    await on_b.subscribe(bucket_id=b.id)

    blob = await author.create_blob({"v": 1}, bucket_ids=[a.id])
    updated = await author.update_blob(blob.id, {"v": 2})
    moved = await author.move_blob(blob.id, a.id, b.id)
    deleted = await author.delete_blob(blob.id)

    seen_a = await on_a.take(3)
    assert [(m["type"], m["data"]["position"]) for m in seen_a] == [
        ("blob.created", blob.position), ("blob.updated", updated.position), ("blob.moved", moved.position)]
    assert seen_a[1]["data"]["blob"]["data"] == {"v": 2}
    assert all(m["data"]["bucket_id"] == a.id for m in seen_a)
    seen_b = await on_b.take(2)
    assert [(m["type"], m["data"]["position"]) for m in seen_b] == [
        ("blob.moved", moved.position), ("blob.deleted", deleted.position)]
    assert all(m["data"]["bucket_id"] == b.id for m in seen_b)
    assert seen_b[0]["data"]["blob"]["bucket_ids"] == [b.id]
    assert seen_a[2]["data"] == {**seen_b[0]["data"], "bucket_id": a.id}
    await on_a.silent(0.3)
