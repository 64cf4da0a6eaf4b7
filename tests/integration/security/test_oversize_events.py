"""A result too large for the event log is the client's problem (413/422), never "the log is
unreachable" (503): a migration whose transform returns more than the log takes."""

from __future__ import annotations

import uuid

import aiohttp

from tests.support.users import new_user

HUGE = "function migrate(data) { return {text: 'x'.repeat(2 * 1024 * 1024)}; }"  # 2 MiB, over NATS' 1 MiB


async def post(http: aiohttp.ClientSession, path: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    async with http.post(path, json=body, headers=headers) as r:
        return r.status, await r.json()


async def test_a_migration_result_over_the_log_limit_is_refused_as_too_large(http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "oversize")
    name = f"oversize-{uuid.uuid4().hex[:8]}"
    anything = {"type": "object"}
    assert (await post(http, "/v1/schemas", {"name": name, "version": "1.0.0", "schema": anything}, user.headers))[0] == 201
    status, body = await post(http, "/v1/schemas", {
        "name": name, "version": "2.0.0", "schema": anything,
        "migration": {"from_version": "1.0.0", "transform": HUGE}}, user.headers)
    assert status == 201, body
    status, blob = await post(http, "/v1/blobs", {"data": {"a": 1}, "schema_id": f"{name}@1.0.0"}, user.headers)
    assert status == 201, blob

    status, body = await post(http, f"/v1/blobs/{blob['id']}/migrate", {"schema_id": name}, user.headers)
    print(f"migrate to a 2 MiB result: {status} {body.get('detail')}")
    assert status in (413, 422) and body["code"] in ("payload_too_large", "validation_failed"), body
    if status == 413:  # refused by the event log: the message says how much it takes
        assert "bytes" in body["detail"] and any(ch.isdigit() for ch in body["detail"]), body
    async with http.get(f"/v1/blobs/{blob['id']}", headers=user.headers) as r:
        unchanged = await r.json()
        assert r.status == 200 and unchanged["schema_id"] == f"{name}@1.0.0" and unchanged["data"] == {"a": 1}
