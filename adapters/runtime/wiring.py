"""Which aggregates, projections, command handlers and routes make up the system.

Kept apart from the container so adding a context touches these short lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.postgres.contents import ReadModelBucketContents
from adapters.runtime.jobs import Jobs, build_jobs
from adapters.sandbox.javascript import JavaScriptSandbox
from adapters.validation.json_schema import JsonSchemaValidator
from commands.blobs import BlobCommands
from commands.books import BookCommands
from commands.buckets import BucketCommands
from commands.schemas import SchemaCommands
from domain.base import InkAggregate
from domain.blob import Blob
from domain.book import Book
from domain.bucket import Bucket
from domain.job import Job
from domain.processor import Processor
from domain.schema import Schema
from domain.user import User
from projections.blobs import BlobProjection
from projections.books import BooksProjection
from projections.buckets import BucketProjection
from projections.changes import Projection
from projections.jobs import JobProjection
from projections.processors import ProcessorProjection
from projections.schemas import SchemaProjection
from projections.users import UsersProjection

if TYPE_CHECKING:
    from adapters.runtime.container import Container


def aggregates() -> list[type[InkAggregate]]:
    return [User, Schema, Bucket, Blob, Book, Processor, Job]


def projections() -> list[Projection]:
    return [
        UsersProjection(), SchemaProjection(), BucketProjection(), BlobProjection(), BooksProjection(),
        ProcessorProjection(), JobProjection(),
    ]


@dataclass
class Contexts:
    """The command handlers of every context beyond users."""

    schemas: SchemaCommands
    buckets: BucketCommands
    blobs: BlobCommands
    books: BookCommands
    jobs: Jobs
    sandbox: JavaScriptSandbox

    async def close(self) -> None:
        self.sandbox.close()
        await self.jobs.close()


def wire_contexts(container: "Container") -> Contexts:
    sandbox = JavaScriptSandbox()
    schemas = SchemaCommands(container.repo, JsonSchemaValidator(), sandbox)
    contents = ReadModelBucketContents(
        container.pool, container.watch, container.store, container.settings.read_wait_seconds
    )
    return Contexts(
        schemas=schemas,
        buckets=BucketCommands(container.repo, contents),
        blobs=BlobCommands(container.repo, schemas, sandbox),
        books=BookCommands(container.repo),
        jobs=build_jobs(container, schemas),
        sandbox=sandbox,
    )


def register_routes(api: Any) -> None:
    """Routes of the contexts beyond auth and operations."""
    from adapters.http.routes import books, content, jobs

    content.register_routes(api)
    books.register_routes(api)
    jobs.register_routes(api)
