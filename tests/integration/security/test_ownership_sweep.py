"""Every route of /openapi.json that takes a resource id, called by another user on
a real resource, answers 403: no route ships without the ownership rule.

Bodies are synthesised from the document itself (ids in them point at the
owner's real resources), so a new route is swept without editing this test.
The only exceptions are the ones the contract makes: schemas are shared type
definitions that every user may read and validate against.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from tests.support.users import TestUser, new_user

PUBLIC = {("GET", "/v1/schemas/{id}"), ("POST", "/v1/schemas/{id}/validate")}


async def post(http: aiohttp.ClientSession, user: TestUser, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(path, json=body, headers=user.headers) as r:
        answer = await r.json()
        assert r.status == 201, answer
        return answer


def resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if resolve(s, doc).get("type") != "null"]
            return resolve(options[0], doc) if options else {"type": "null"}
    return schema


def sample(name: str, schema: dict[str, Any], doc: dict[str, Any], ids: dict[str, Any]) -> Any:
    schema = resolve(schema, doc)
    if name in ids:
        return ids[name]
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        return {k: sample(k, v, doc, ids) for k, v in schema["properties"].items() if k in schema.get("required", [])}
    return {"string": "x", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}.get(kind, "x")


async def test_every_route_with_a_resource_id_refuses_another_user(http: aiohttp.ClientSession) -> None:
    owner, other = await new_user(http, "owner"), await new_user(http, "intruder")
    bucket = await post(http, owner, "/v1/buckets", {"name": "b", "type": "folder"})
    second = await post(http, owner, "/v1/buckets", {"name": "b2", "type": "folder"})
    schema_name = f"own-{owner.user_id[-8:]}"
    schema = await post(http, owner, "/v1/schemas", {"name": schema_name, "version": "1.0.0", "schema": {"type": "object"}})
    blob = await post(http, owner, "/v1/blobs", {"data": {"a": 1}, "bucket_ids": [bucket["id"]], "schema_id": schema["id"]})
    book = await post(http, owner, "/v1/books", {"title": "t", "chapters": [{"title": "c", "content": "x"}]})
    chapter_ids = [c["id"] for c in book["chapters"]]
    processor = await post(http, owner, "/v1/processors", {"name": "p", "type": "js-transform",
                                                           "config": {"source": "function process(d) { return d; }"}})
    async with http.post("/v1/jobs", json={"processor_id": processor["id"], "input_blob_id": blob["id"]},
                         headers=owner.headers) as r:
        job = await r.json()
        assert r.status == 202, job
    await post(http, owner, "/v1/schemas", {"name": schema_name, "version": "2.0.0", "schema": {"type": "object"},
                                            "migration": {"from_version": "1.0.0",
                                                          "transform": "function migrate(d) { return d; }"}})
    async with http.post("/v1/migrations", json={"schema_id": f"{schema_name}@2.0.0", "from_version": "1.0.0"},
                         headers=owner.headers) as r:
        migration = await r.json()
        assert r.status == 202, migration
    path_ids = {"buckets": bucket["id"], "blobs": blob["id"], "books": book["id"], "schemas": schema["id"],
                "processors": processor["id"], "jobs": job["id"], "migrations": migration["id"]}
    body_ids = {
        "bucket_id": second["id"], "from_bucket_id": bucket["id"], "to_bucket_id": second["id"],
        "parent_id": second["id"], "bucket_ids": [bucket["id"]], "schema_id": schema["id"],
        "chapter_ids": chapter_ids, "input_blob_id": blob["id"], "processor_id": processor["id"],
    }
    query_ids = {"bucket_id": bucket["id"], "parent_id": bucket["id"], "processor_id": processor["id"]}
    async with http.get("/openapi.json") as r:
        doc = await r.json()
    swept, failures = [], []
    for path, operations in doc["paths"].items():
        if "{" not in path:
            for method, op in operations.items():  # lists filtered by someone else's resource
                for param in op.get("parameters", []):
                    if param["in"] == "query" and param["name"] in query_ids:
                        query = {param["name"]: query_ids[param["name"]]}
                        async with http.request(method.upper(), path, params=query, headers=other.headers) as r:
                            status = r.status
                        swept.append(f"{method.upper()} {path}?{param['name']}= → {status}")
                        if status != 403:
                            failures.append(f"{method.upper()} {path}?{param['name']}=: {status}, expected 403")
                if "requestBody" in op and method == "post":  # commands that name someone else's resource
                    body_schema = op["requestBody"]["content"]["application/json"]["schema"]
                    body = sample("", body_schema, doc, body_ids)
                    if isinstance(body, dict) and {"processor_id", "input_blob_id"} & set(body):
                        async with http.post(path, json=body, headers=other.headers) as r:
                            status, code = r.status, (await r.json()).get("code")
                        swept.append(f"POST {path} (someone else's ids in the body) → {status}")
                        if status != 403 or code != "forbidden":
                            failures.append(f"POST {path} with someone else's ids: {status} {code}, expected 403")
            continue
        collection = path.split("/")[2]
        assert collection in path_ids, f"the sweep does not know how to make a {collection!r} resource: add it"
        url = path.replace("{id}", path_ids[collection]).replace("{cid}", chapter_ids[0])
        assert "{" not in url, f"unknown path parameter in {path}"
        for method, op in operations.items():
            method = method.upper()
            kwargs: dict[str, Any] = {"headers": other.headers}
            if "requestBody" in op:
                body_schema = op["requestBody"]["content"]["application/json"]["schema"]
                kwargs["json"] = sample("", body_schema, doc, body_ids)
            params = {p["name"]: "markdown" for p in op.get("parameters", []) if p["name"] == "format"}
            async with http.request(method, url, params=params, **kwargs) as r:
                status = r.status
                code = (await r.json()).get("code") if r.content_type.endswith("json") else None
            expected = 200 if (method, path) in PUBLIC else 403
            swept.append(f"{method} {path} → {status}")
            if status != expected or (expected == 403 and code != "forbidden"):
                failures.append(f"{method} {path}: {status} {code}, expected {expected}")
    print("\n".join(["", *swept]))
    assert len(swept) >= 19, swept  # the routes of this contract; more may come, fewer may not
    assert not failures, failures
