"""Issue 9, defect 2: a command the write side accepts must always project.

A schema version whose MAJOR did not fit a ``bigint`` was accepted (201), then
halted the schemas projection for good: every default-consistency read of
schemas and blobs answered 503, for every user. Numbers are now bounded by
what the read models store, and refused with 422 (a body value) or 400 (a
query parameter) beyond it. Runs on a system of its own (``own_system``), so
a regression poisons only that log.
"""

from __future__ import annotations

import uuid

import aiohttp

from tests.support.sdk import new_client
from tests.support.system import RunningSystem
from tests.support.wire import call, problem

INT64_MAX = 2**63 - 1


def schema_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def projections_running(system: RunningSystem) -> dict[str, str]:
    return {r.name: r.state.status for r in system.running.runners}


async def test_a_version_beyond_64_bits_is_refused_and_everyone_keeps_reading(
    own_system: RunningSystem, own_http: aiohttp.ClientSession
) -> None:
    victim = await new_client(own_system.base_url, "victim", session=own_http)
    attacker = await new_client(own_system.base_url, "attacker", session=own_http)
    name = schema_name("novel")
    await victim.register_schema(name, "1.0.0", {"type": "object"})
    await victim.create_blob({"title": "mine"}, schema_id=name)

    target = schema_name("attack")
    for version in ("99999999999999999999.0.0", f"{INT64_MAX + 1}.0.0", f"1.{INT64_MAX + 1}.0", f"1.2.{10**30}"):
        answer = await call(own_http, "POST", "/v1/schemas", attacker,
                            json={"name": target, "version": version, "schema": {}})
        body = problem(answer, 422, "validation_failed", "validation failed")
        assert body["errors"] == [{"path": "/version", "message": f"MAJOR, MINOR and PATCH must each be at most {INT64_MAX}"}]

    # The largest version a bigint holds is accepted, and projects.
    edge = f"{INT64_MAX}.{INT64_MAX}.{INT64_MAX}"
    created = await attacker.register_schema(target, edge, {})
    assert created.version == edge
    assert (await attacker.get_schema(f"{target}@{edge}")).version == edge

    # Every projection still runs, and other users' default-consistency reads answer.
    assert set((await projections_running(own_system)).values()) == {"running"}
    health = await call(own_http, "GET", "/health")
    assert health.status == 200 and health.body["status"] == "healthy", health.body
    assert [v.version for v in (await victim.list_schema_versions(name)).items] == ["1.0.0"]
    assert [b.data for b in (await victim.list_blobs()).items] == [{"title": "mine"}]
    assert (await victim.get_schema(name)).version == "1.0.0"


async def test_numbers_in_queries_and_bodies_beyond_their_columns_are_refused(
    own_system: RunningSystem, own_http: aiohttp.ClientSession
) -> None:
    ink = await new_client(own_system.base_url, "numbers", session=own_http)
    blob = await ink.create_blob({"n": 1})
    book = await ink.create_book("Numbers", chapters=[{"title": "One", "content": ""}])
    refused = [
        ("GET", f"/v1/blobs/{blob.id}", {"as_of": str(INT64_MAX + 1)}, None),
        ("GET", f"/v1/blobs/{blob.id}", {"min_position": str(INT64_MAX + 1)}, None),
        ("GET", f"/v1/blobs/{blob.id}", {"min_position": "9" * 5000}, None),
        ("GET", "/v1/blobs", {"limit": "501"}, None),
        ("GET", "/v1/books", {"limit": str(2**64)}, None),
        ("POST", f"/v1/books/{book.id}/chapters", None, {"title": "t", "content": "", "order": 2**64}),
    ]
    for method, path, params, body in refused:
        answer = await call(own_http, method, path, ink, params=params, json=body)
        problem(answer, 400, "bad_request", "bad request")
    # a 64-bit number, but no place in this book: the domain's 422, naming the book's range
    for order in (3, INT64_MAX, 0):
        answer = await call(own_http, "POST", f"/v1/books/{book.id}/chapters", ink,
                            json={"title": "t", "content": "", "order": order})
        problem(answer, 422, "validation_failed", "validation failed")
    # A huge JSON number in a blob is data, stored as it came (a float beyond 64-bit integers).
    huge = await call(own_http, "POST", "/v1/blobs", ink, json={"data": {"n": 10**30, "m": -(2**63), "f": 1e308}})
    assert huge.status == 201, huge.body
    again = await call(own_http, "GET", f"/v1/blobs/{huge.body['id']}", ink)
    assert again.status == 200 and again.body["data"] == {"n": 1e30, "m": -(2**63), "f": 1e308}
    assert set((await projections_running(own_system)).values()) == {"running"}
