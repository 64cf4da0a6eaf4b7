"""Processors and jobs routes.

Command answers are built from what the command saved (a processor from its
aggregate, a job by folding its history with the jobs projection, a bounded
batch at a time), in the shape the matching GET answers from the read model,
which may lag behind.
Only the owner reaches a processor or a job: someone else's is 403, an
unknown (or malformed) id 404.
"""

from __future__ import annotations

from aiohttp import web

from adapters.http.api import (
    Api,
    actor,
    command_answer,
    context,
    if_match,
    page_answer,
    read_body,
    read_query,
    resource_answer,
)
from adapters.http.keys import BUS, METRICS, READS
from adapters.http.models import ReadQuery
from adapters.http.models_jobs import (
    BulkRetryIn,
    BulkRetryOut,
    JobChanged,
    JobIn,
    JobListQuery,
    JobPage,
    ProcessorChanged,
    ProcessorDeleted,
    ProcessorIn,
    ProcessorListQuery,
    ProcessorPage,
    ProcessorPatch,
)
from adapters.http.page_turns import BYTE_PAGING, page_turn
from commands.authorization import ensure_owner
from commands.jobs import CancelJob, RequestJob, RetryFailedJobs, RetryJob
from commands.processors import DeleteProcessor, RegisterProcessor, UpdateProcessor
from commands.repository import Saved
from domain.errors import NotFound
from domain.ids import is_id
from domain.job import Job
from domain.processor import Processor
from projections.documents import JobOut, ProcessorOut
from projections.read_model import ReadModel

PROCESSORS, JOBS = "processors", "jobs"


async def _read(request: web.Request, query: ReadQuery, *projections: str) -> ReadModel:
    return await request.app[READS].read(projections, query.min_position, query.consistency)


# -- answers from what a command saved ------------------------------------------------------


def _processor_answer(saved: Saved[Processor], status: int = 200, **extra: bool) -> web.Response:
    processor = saved.aggregate
    return command_answer(ProcessorOut.from_aggregate(processor), saved.position, status=status,
                          version=processor.version, **extra)


async def _job_answer(request: web.Request, saved: Saved[Job], status: int) -> web.Response:
    """The job as of the command's event, from the aggregate the command saved (it keeps the event's
    times), never from its history: that is the owner's to make long (cancel and retry, again and again)."""
    job = JobOut.from_aggregate(saved.aggregate, saved.position)
    request.app[METRICS].jobs.labels(job.processor_type, job.status).inc()
    return command_answer(job, saved.position, status=status, version=job.version)


# -- processors -------------------------------------------------------------------------------


def _limits(body: ProcessorIn | ProcessorPatch) -> dict[str, int] | None:
    return body.limits.model_dump(exclude_none=True) if body.limits is not None else None


def _triggers(body: ProcessorIn | ProcessorPatch) -> list[dict[str, str | None]] | None:
    return [t.model_dump() for t in body.triggers] if body.triggers is not None else None


async def create_processor(request: web.Request) -> web.Response:
    body = await read_body(request, ProcessorIn)
    command = RegisterProcessor(body.name, body.type, body.config, body.input_schema, body.output_schema,
                                _triggers(body), _limits(body))
    return _processor_answer(await request.app[BUS].handle(command, context(request)), status=201)


async def _own_processor(model: ReadModel, user: str, processor_id: str) -> ProcessorOut:
    found = await model.processor(processor_id) if is_id(processor_id) else None
    if found is None:
        raise NotFound(f"processor {processor_id}")
    ensure_owner(user, found.owner_id, "processor")
    return found


async def get_processor(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, ReadQuery)
    found = await _own_processor(await _read(request, query, PROCESSORS), user, request.match_info["id"])
    return resource_answer(found, found.version)


async def list_processors(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, ProcessorListQuery)
    model = await _read(request, query, PROCESSORS)
    async with page_turn(request, user):  # a config may weigh 256 KiB: a page is up to 2 MiB
        page = await model.processors(user, query.limit, query.cursor)
        return page_answer(page.items, page.next_cursor)


async def update_processor(request: web.Request) -> web.Response:
    body = await read_body(request, ProcessorPatch)
    command = UpdateProcessor(request.match_info["id"], body.config, _triggers(body), _limits(body),
                              if_match(request))
    return _processor_answer(await request.app[BUS].handle(command, context(request)))


async def delete_processor(request: web.Request) -> web.Response:
    command = DeleteProcessor(request.match_info["id"], if_match(request))
    return _processor_answer(await request.app[BUS].handle(command, context(request)), deleted=True)


# -- jobs -------------------------------------------------------------------------------------


async def request_job(request: web.Request) -> web.Response:
    body = await read_body(request, JobIn)
    saved = await request.app[BUS].handle(RequestJob(body.processor_id, body.input_blob_id), context(request))
    return await _job_answer(request, saved, 202)


async def get_job(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, ReadQuery)
    job_id = request.match_info["id"]
    if not is_id(job_id):
        raise NotFound(f"job {job_id}")
    found = await (await _read(request, query, JOBS)).job(job_id)
    if found is None:
        raise NotFound(f"job {job_id}")
    ensure_owner(user, found.owner_id, "job")
    return resource_answer(found, found.version)


async def list_jobs(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, JobListQuery)
    model = await _read(request, query, JOBS, PROCESSORS)
    if query.processor_id is not None:
        if not is_id(query.processor_id):
            return page_answer([], None)  # no processor has that id: it has no jobs, like an unknown schema_id
        processor = await model.processor(query.processor_id)
        if processor is not None:
            ensure_owner(user, processor.owner_id, "processor")
    async with page_turn(request, user):  # two errors of 2,000 characters a job: a page is up to 2 MiB
        page = await model.jobs(user, query.processor_id, query.status, query.limit, query.cursor)
        return page_answer(page.items, page.next_cursor)


async def cancel_job(request: web.Request) -> web.Response:
    saved = await request.app[BUS].handle(CancelJob(request.match_info["id"]), context(request))
    return await _job_answer(request, saved, 200)


async def retry_job(request: web.Request) -> web.Response:
    saved = await request.app[BUS].handle(RetryJob(request.match_info["id"]), context(request))
    return await _job_answer(request, saved, 202)


async def retry_failed_jobs(request: web.Request) -> web.Response:
    body = await read_body(request, BulkRetryIn)
    result = await request.app[BUS].handle(RetryFailedJobs(body.processor_id), context(request))
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
       query=ProcessorListQuery, response=ProcessorPage, errors=(400,),
       description=(_PAGING + BYTE_PAGING).strip())(list_processors)
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
       errors=(400, 403),
       description="Optionally of one processor (yours) and/or in one status." + _PAGING + BYTE_PAGING)(list_jobs)
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
