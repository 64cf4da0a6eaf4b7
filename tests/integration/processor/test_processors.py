"""Registering, changing and deleting processors; every bad input is a clear 4xx that writes nothing."""

from __future__ import annotations

import aiohttp
import pytest

from adapters.client import (
    ConflictError,
    ForbiddenError,
    InkstreamClient,
    NotFoundError,
    PreconditionFailedError,
    ValidationFailedError,
)
from tests.integration.processor.helpers import OUTLINE_SCHEMA, js_processor, schema, unique
from tests.support.sdk import SignUp, fails
from tests.support.wire import call, problem

VERSIONED = """function process(data) {
  var until = Date.now() + (data.ms || 0);
  while (Date.now() < until) {}
  return {v: %d};
}"""


async def test_register_read_list_change_and_delete(sign_up: SignUp) -> None:
    ink = await sign_up("proc")
    created = await ink.register_processor("echo", "js-transform", {"source": "function process(d) { return d; }"},
                                           limits={"timeout_seconds": 5})
    assert created.version == 1 and created.owner_id == ink.user_id and created.triggers == []
    assert created.limits.model_dump() == {"timeout_seconds": 5, "max_attempts": 5, "max_memory_mb": 64}
    assert (await ink.get_processor(created.id)).model_dump() == {
        k: v for k, v in created.model_dump().items() if k != "position"
    }
    changed = await ink.update_processor(created.id, limits={"max_attempts": 2}, if_match=1)
    assert changed.version == 2
    assert changed.limits.model_dump() == {"timeout_seconds": 5, "max_attempts": 2, "max_memory_mb": 64}
    with fails(PreconditionFailedError):
        await ink.update_processor(created.id, limits={"max_attempts": 3}, if_match=1)
    with fails(ValidationFailedError) as caught:
        await ink.update_processor(created.id, config={"source": "function process(d) { return"})
    assert caught.value.errors[0]["path"] == "/config/source"
    assert [p.id for p in (await ink.list_processors()).items] == [created.id]
    deleted = await ink.delete_processor(created.id)
    assert deleted.deleted and deleted.version == 3
    with fails(NotFoundError):
        await ink.get_processor(created.id)
    with fails(NotFoundError):
        await ink.update_processor(created.id, limits={"max_attempts": 3})
    assert (await ink.list_processors()).items == []


async def test_jobs_run_with_the_processor_version_they_were_requested_with(sign_up: SignUp) -> None:
    ink = await sign_up("versions")
    processor_id = await js_processor(ink, VERSIONED % 1)
    slow = await ink.create_blob({"ms": 1500})
    first = await ink.request_job(processor_id, slow.id)
    assert first.processor_version == 1
    await ink.cancel_job(first.id)  # pending or running: either way it will not complete as it is
    await ink.update_processor(processor_id, config={"source": VERSIONED % 2})
    retried = await ink.retry_job(first.id)
    assert retried.status == "pending" and retried.processor_version == 1
    quick = await ink.create_blob({"ms": 0})
    second = await ink.request_job(processor_id, quick.id)
    assert second.processor_version == 2
    first_done, second_done = await ink.wait_for_job(first.id), await ink.wait_for_job(second.id)
    assert (await ink.get_blob(first_done.output_blob_id)).data == {"v": 1}
    assert (await ink.get_blob(second_done.output_blob_id)).data == {"v": 2}


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"type": "no-such-type", "config": {}}, "/type"),
        ({"type": "Bad Type", "config": {}}, "/type"),
        ({"type": "text-expansion", "config": {}}, "/config/model"),
        ({"type": "text-expansion", "config": {"model": "m", "temperature": 2}}, "/config/temperature"),
        ({"type": "js-transform", "config": {"source": "function process(d) {"}}, "/config/source"),
        ({"type": "js-transform", "config": {"source": "function transform(d) { return d; }"}}, "/config/source"),
        ({"type": "js-transform", "config": {}}, "/config/source"),
        ({"type": "js-transform", "config": {"source": "x" * 100_001}}, "/config/source"),
        ({"type": "js-transform", "config": {"source": "function process(d) { return d; }", "pad": "x" * 300_000}},
         "/config"),
        ({"name": " ", "type": "js-transform", "config": {"source": "function process(d) { return d; }"}}, "/name"),
        ({"name": "n" * 201, "type": "js-transform", "config": {"source": "function process(d) { return d; }"}},
         "/name"),
        ({"limits": {"timeout_seconds": 0}}, "/limits/timeout_seconds"),
        ({"limits": {"timeout_seconds": 2**62}}, "/limits/timeout_seconds"),
        ({"limits": {"max_attempts": 101}}, "/limits/max_attempts"),
        ({"limits": {"max_memory_mb": 8}}, "/limits/max_memory_mb"),
        ({"triggers": [{"on": "blob.deleted"}]}, "/triggers/0/on"),
        ({"triggers": [{"on": "blob.created", "bucket_id": "not-an-id"}]}, "/triggers/0/bucket_id"),
        ({"triggers": [{"on": "blob.created"}] * 17}, "/triggers"),
    ],
)
async def test_invalid_registrations_are_422_and_record_nothing(sign_up: SignUp, body: dict, path: str) -> None:
    ink = await sign_up("invalid")
    request = {"name": "p", "type": "js-transform", "config": {"source": "function process(d) { return d; }"}, **body}
    with fails(ValidationFailedError) as caught:
        await ink.register_processor(request.pop("name"), request.pop("type"), request.pop("config"), **request)
    assert path in [e["path"] for e in caught.value.errors], caught.value.errors
    assert (await ink.list_processors()).items == []


async def test_wrong_types_and_unknown_fields_are_400(sign_up: SignUp, http: aiohttp.ClientSession) -> None:
    ink = await sign_up("types")
    for body in ({"name": "p", "type": "js-transform", "config": "function process(d) {}"},
                 {"name": "p", "type": "js-transform", "config": {}, "limits": {"timeout_seconds": 1.5}},
                 {"name": "p", "type": "js-transform", "config": {}, "limits": {"retries": 1}},
                 {"name": "p", "type": "js-transform", "config": {}, "surprise": 1}):
        problem(await call(http, "POST", "/v1/processors", ink, json=body), 400, "bad_request", "bad request")
    problem(await call(http, "POST", "/v1/jobs", ink, json={"processor_id": 1, "input_blob_id": "x"}), 400,
            "bad_request", "bad request")
    assert (await ink.list_processors()).items == []


async def test_schemas_and_trigger_buckets_must_exist_and_buckets_be_yours(sign_up: SignUp) -> None:
    ink, other = await sign_up("owner"), await sign_up("other")
    theirs = await other.create_bucket("theirs", "folder")
    source = {"source": "function process(d) { return d; }"}
    with fails(NotFoundError):
        await ink.register_processor("p", "js-transform", source, input_schema=unique("missing"))
    with fails(NotFoundError):
        await ink.register_processor("p", "js-transform", source, output_schema=unique("missing"))
    with fails(NotFoundError):
        await ink.register_processor("p", "js-transform", source,
                                     triggers=[{"on": "blob.created", "schema_id": unique("missing")}])
    with fails(NotFoundError):
        await ink.register_processor("p", "js-transform", source,
                                     triggers=[{"on": "blob.created", "bucket_id": "01890000-0000-7000-8000-000000000000"}])
    with fails(ForbiddenError):
        await ink.register_processor("p", "js-transform", source, triggers=[{"on": "blob.created", "bucket_id": theirs.id}])
    assert (await ink.list_processors()).items == []


async def test_bad_job_requests_are_4xx_and_record_nothing(sign_up: SignUp) -> None:
    ink, other = await sign_up("jobs"), await sign_up("stranger")
    outline_id = await schema(ink, "outline", OUTLINE_SCHEMA)
    other_outline = await schema(ink, "other-outline", OUTLINE_SCHEMA)
    expander = (await ink.register_processor("exp", "text-expansion", {"model": "m"}, input_schema=outline_id)).id
    untyped_expander = (await ink.register_processor("exp2", "text-expansion", {"model": "m"})).id
    wrong_schema = await ink.create_blob({"outline": "an outline"}, schema_id=other_outline)
    no_outline = await ink.create_blob({"title": "no outline"})
    mine = await ink.create_blob({"outline": "fine"}, schema_id=outline_id)
    theirs = await other.create_blob({"outline": "theirs"})
    their_processor = await js_processor(other, "function process(d) { return d; }")

    with fails(ValidationFailedError) as caught:
        await ink.request_job(expander, wrong_schema.id)
    assert caught.value.errors[0]["path"] == "/input_blob_id" and "input schema" in caught.value.errors[0]["message"]
    with fails(ValidationFailedError) as caught:
        await ink.request_job(untyped_expander, no_outline.id)
    assert caught.value.errors[0]["path"] == "/data/outline"
    with fails(ForbiddenError):
        await ink.request_job(their_processor, mine.id)
    with fails(ForbiddenError):
        await ink.request_job(expander, theirs.id)
    with fails(NotFoundError):
        await ink.request_job("01890000-0000-7000-8000-000000000000", mine.id)
    with fails(NotFoundError):
        await ink.request_job(expander, "no-such-blob")
    assert (await ink.list_jobs(consistency="strong")).items == []


async def test_a_finished_job_cannot_be_cancelled_and_only_a_failed_or_cancelled_one_retried(sign_up: SignUp) -> None:
    ink: InkstreamClient = await sign_up("states")
    blob = await ink.create_blob({"x": 1})
    job = await ink.request_job(await js_processor(ink, "function process(d) { return d; }"), blob.id)
    done = await ink.wait_for_job(job.id)
    assert done.status == "completed"
    with fails(ConflictError):
        await ink.cancel_job(job.id)
    with fails(ConflictError):
        await ink.retry_job(job.id)
    with fails(NotFoundError):
        await ink.get_job("not-a-job")
