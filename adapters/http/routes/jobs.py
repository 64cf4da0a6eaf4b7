"""Processors and jobs routes.

Command answers are built from what the command saved (a processor from its
aggregate, a job by folding its history with the jobs projection), in the
shape the matching GET answers from the read model, which may lag behind.
Only the owner reaches a processor or a job: someone else's is 403, an
unknown (or malformed) id 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.http.api import Api, actor, command_answer, context, if_match, json_response, read_body, read_query, resource_answer
from adapters.http.keys import container
from adapters.http.models_content import ReadQuery
from adapters.http.models_jobs import (
    BulkRetryIn,
    BulkRetryOut,
    JobChanged,
    JobIn,
    JobListQuery,
    JobOut,
    JobPage,
    ProcessorChanged,
    ProcessorDeleted,
    ProcessorIn,
    ProcessorListQuery,
    ProcessorOut,
    ProcessorPage,
    ProcessorPatch,
)
from adapters.http.reads import read_model
from adapters.postgres.queries import jobs as queries
from commands.authorization import ensure_owner
from commands.repository import Saved
from domain.base import utc
from domain.errors import NotFound
from domain.ids import is_id
from domain.job import Job
from domain.processor import Processor
from projections.jobs import job_row

PROCESSORS, JOBS = "processors", "jobs"


# -- answers from what a command saved ------------------------------------------------------


def processor_payload(processor: Processor) -> dict[str, Any]:
    return {
        "id": processor.id_str,
        "name": processor.name,
        "type": processor.type,
        "input_schema": processor.input_schema,
        "output_schema": processor.output_schema,
        "config": processor.config,
        "triggers": processor.triggers,
        "limits": processor.limits,
        "owner_id": processor.owner_id,
        "version": processor.version,
        "created_at": utc(processor.created_on),
        "updated_at": utc(processor.modified_on),
    }


async def _job_answer(request: web.Request, saved: Saved[Job], status: int) -> web.Response:
    """The job as of the command's event, folded from its history (so it has the event's times)."""
    history = await container(request).repo.history(Job.TYPE, saved.aggregate.id_str, until_position=saved.position)
    row = job_row(history)
    assert row is not None
    return command_answer(queries.job_answer(row), saved.position, status=status, version=row["version"])


def _count(request: web.Request, job: Job, status: str) -> None:
    container(request).metrics.jobs.labels(job.processor_type, status).inc()


# -- processors -------------------------------------------------------------------------------


def _processors(request: web.Request) -> Any:
    return container(request).ctx.jobs.processors


async def create_processor(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, ProcessorIn)
    triggers = [t.model_dump() for t in body.triggers] if body.triggers is not None else None
    limits = body.limits.model_dump(exclude_none=True) if body.limits is not None else None
    with c.tracing.span("command Processor.register"):
        saved = await _processors(request).register(
            context(request), body.name, body.type, body.config, body.input_schema, body.output_schema, triggers, limits
        )
    return command_answer(processor_payload(saved.aggregate), saved.position, status=201,
                          version=saved.aggregate.version)


async def _own_processor_row(pool: Any, user: str, processor_id: str) -> dict[str, Any]:
    row = await queries.get_processor(pool, processor_id) if is_id(processor_id) else None
    if row is None:
        raise NotFound(f"processor {processor_id}")
    ensure_owner(user, row["owner_id"], "processor")
    return row


async def get_processor(request: web.Request) -> web.Response:
    user = actor(request)
    read_query(request, ReadQuery)
    pool = await read_model(request, [PROCESSORS])
    row = await _own_processor_row(pool, user, request.match_info["id"])
    return resource_answer(row, row["version"])


async def list_processors(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, ProcessorListQuery)
    pool = await read_model(request, [PROCESSORS])
    return json_response(await queries.list_processors(pool, user, query.limit, query.cursor))


async def update_processor(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, ProcessorPatch)
    triggers = [t.model_dump() for t in body.triggers] if body.triggers is not None else None
    limits = body.limits.model_dump(exclude_none=True) if body.limits is not None else None
    with c.tracing.span("command Processor.update"):
        saved = await _processors(request).update(
            context(request), request.match_info["id"], body.config, triggers, limits, if_match(request)
        )
    return command_answer(processor_payload(saved.aggregate), saved.position, version=saved.aggregate.version)


async def delete_processor(request: web.Request) -> web.Response:
    c = container(request)
    with c.tracing.span("command Processor.delete"):
        saved = await _processors(request).delete(context(request), request.match_info["id"], if_match(request))
    payload = {**processor_payload(saved.aggregate), "deleted": True}
    return command_answer(payload, saved.position, version=saved.aggregate.version)


# -- jobs -------------------------------------------------------------------------------------


def _jobs(request: web.Request) -> Any:
    return container(request).ctx.jobs.jobs


async def request_job(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, JobIn)
    with c.tracing.span("command Job.request"):
        saved = await _jobs(request).request(context(request), body.processor_id, body.input_blob_id)
    _count(request, saved.aggregate, "pending")
    return await _job_answer(request, saved, 202)


async def get_job(request: web.Request) -> web.Response:
    user = actor(request)
    read_query(request, ReadQuery)
    job_id = request.match_info["id"]
    if not is_id(job_id):
        raise NotFound(f"job {job_id}")
    pool = await read_model(request, [JOBS])
    row = await queries.get_job(pool, job_id)
    if row is None:
        raise NotFound(f"job {job_id}")
    ensure_owner(user, row["owner_id"], "job")
    return resource_answer(row, row["version"])


async def list_jobs(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, JobListQuery)
    pool = await read_model(request, [JOBS, PROCESSORS])
    if query.processor_id is not None and is_id(query.processor_id):
        row = await queries.get_processor(pool, query.processor_id)
        if row is not None:
            ensure_owner(user, row["owner_id"], "processor")
    page = await queries.list_jobs(pool, user, query.processor_id, query.status, query.limit, query.cursor)
    return json_response(page)


async def cancel_job(request: web.Request) -> web.Response:
    c = container(request)
    with c.tracing.span("command Job.cancel"):
        saved = await _jobs(request).cancel(context(request), request.match_info["id"])
    _count(request, saved.aggregate, "cancelled")
    return await _job_answer(request, saved, 200)


async def retry_job(request: web.Request) -> web.Response:
    c = container(request)
    with c.tracing.span("command Job.retry"):
        saved = await _jobs(request).retry(context(request), request.match_info["id"])
    _count(request, saved.aggregate, "pending")
    return await _job_answer(request, saved, 202)


async def retry_failed_jobs(request: web.Request) -> web.Response:
    c = container(request)
    body = await read_body(request, BulkRetryIn)
    with c.tracing.span("command Job.retry_failed"):
        result = await _jobs(request).retry_failed(context(request), body.processor_id)
    return command_answer({"retried": result.retried}, result.position, status=202)


# -- declarations ----------------------------------------------------------------------------------

_OWNER_ONLY = "Only the owner may read or change it (403 for someone else's, 404 when unknown)."
_IF_MATCH = " `If-Match` with the ETag (the version) makes a stale write fail with 412."
_PAGING = " Paged with `limit` (1-500, default 50) and the previous page's `next_cursor`."


def register_routes(api: Api) -> None:
    op = api.operation
    op("POST", "/v1/processors", summary="Register a processor", tag="processors", body=ProcessorIn,
       response=ProcessorChanged, status=201, errors=(403, 404, 409, 422),
       description="422 for an unknown type, a config its type refuses (a js-transform's source is compiled "
                   "now), limits out of range or a malformed trigger; 404 for an unknown schema or trigger "
                   "bucket, 403 for someone else's bucket. Nothing is recorded when anything fails.")(create_processor)
    op("GET", "/v1/processors", summary="Your processors, oldest first", tag="processors",
       query=ProcessorListQuery, response=ProcessorPage, errors=(400,), description=_PAGING.strip())(list_processors)
    op("GET", "/v1/processors/{id}", summary="A processor", tag="processors", query=ReadQuery,
       response=ProcessorOut, errors=(400, 403, 404), description=_OWNER_ONLY)(get_processor)
    op("PATCH", "/v1/processors/{id}", summary="Change a processor's config, triggers and/or limits",
       tag="processors", body=ProcessorPatch, response=ProcessorChanged, errors=(403, 404, 409, 412, 422),
       description=_OWNER_ONLY + " `version` goes up by one; jobs already requested run with the version they "
                   "were requested with." + _IF_MATCH)(update_processor)
    op("DELETE", "/v1/processors/{id}", summary="Delete a processor", tag="processors",
       response=ProcessorDeleted, errors=(403, 404, 409, 412),
       description=_OWNER_ONLY + " Its pending and running jobs are cancelled (by a policy that follows the "
                   "deletion in the log, within moments)." + _IF_MATCH)(delete_processor)
    op("POST", "/v1/jobs", summary="Run a processor on a blob", tag="jobs", body=JobIn, response=JobChanged,
       status=202, errors=(403, 404, 409, 422),
       description="202 with the job `pending`; a runner picks it up. 404/403 for an unknown or someone else's "
                   "processor or blob; 422 when the blob's schema is not the processor's `input_schema` or the "
                   "blob is no input for its type (a text-expansion needs an `outline`).")(request_job)
    op("GET", "/v1/jobs", summary="Your jobs, newest first", tag="jobs", query=JobListQuery, response=JobPage,
       errors=(400, 403), description="Optionally of one processor (yours) and/or in one status." + _PAGING)(list_jobs)
    op("GET", "/v1/jobs/{id}", summary="A job", tag="jobs", query=ReadQuery, response=JobOut,
       errors=(400, 403, 404),
       description=_OWNER_ONLY + " Statuses: pending → running → completed | failed | cancelled. A failed attempt "
                   "that will be retried leaves the job pending, with `last_error` and its `attempts`.")(get_job)
    op("POST", "/v1/jobs/retry", summary="Retry every failed job of a processor", tag="jobs", body=BulkRetryIn,
       response=BulkRetryOut, status=202, errors=(403, 404, 409),
       description="Each failed job of the processor (yours) runs again with a fresh attempt budget; `retried` "
                   "counts them.")(retry_failed_jobs)
    op("POST", "/v1/jobs/{id}/cancel", summary="Cancel a pending or running job", tag="jobs",
       response=JobChanged, errors=(403, 404, 409),
       description=_OWNER_ONLY + " A running job is stopped and its result discarded. 409 once the job has "
                   "finished.")(cancel_job)
    op("POST", "/v1/jobs/{id}/retry", summary="Run a failed or cancelled job again", tag="jobs",
       response=JobChanged, status=202, errors=(403, 404, 409),
       description=_OWNER_ONLY + " 202 with the job `pending` again (a new run, a fresh attempt budget, the "
                   "same processor version and input); 409 unless it is failed or cancelled, or when its "
                   "processor was deleted.")(retry_job)
