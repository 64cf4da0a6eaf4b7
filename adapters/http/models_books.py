"""Request, query and answer models of the Books routes.

Types are the HTTP layer's (a wrong type is a 400); presence and value rules
(a title is required and not blank, ``order`` within the book, a reorder is a
permutation) are the domain's, so they come back as one 422 that lists every
error by JSON Pointer path, ``/chapters/1/title`` included. That is why the
required text fields below accept ``None`` in the model yet are documented as
required strings: the document states the contract, the domain enforces it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import ConfigDict, Field, WithJsonSchema

from adapters.export import FORMATS
from adapters.http.models import DEPTH_NOTE, Answer, ListQuery, ReadQuery, Request
from domain.book import MAX_CHAPTERS, MAX_TITLE
from domain.limits import MAX_INT64
from domain.limits import Limits
from projections.documents import BookOut, BookSummary, ChapterOut

_LIMITS = Limits()  # the defaults; the INKSTREAM_MAX_* settings may lower them
_TITLE = {"type": "string", "minLength": 1, "maxLength": MAX_TITLE, "pattern": r"\S",
          "description": "Required and not blank."}
_CONTENT = {"type": "string", "maxLength": _LIMITS.chapter_bytes - 2,
            "description": "Plain text (may be empty); exports escape it, never interpret it. A chapter's title and "
                           f"content take at most {_LIMITS.chapter_bytes} bytes as JSON (UTF-8, escapes included; "
                           "`INKSTREAM_MAX_CHAPTER_BYTES`), else 422."}
_METADATA = (f"At most {_LIMITS.metadata_bytes} bytes as JSON (`INKSTREAM_MAX_METADATA_BYTES`), else 422. "
             + DEPTH_NOTE)
_BOOK_SIZE = (f" A book (title, metadata, every chapter's title and content) takes at most {_LIMITS.book_bytes} "
              "bytes as JSON (`INKSTREAM_MAX_BOOK_BYTES`): a change that would make it bigger is a 422.")

RequiredTitle = Annotated[str | None, WithJsonSchema(_TITLE)]
RequiredContent = Annotated[str | None, WithJsonSchema(_CONTENT)]


def _documented_required(names: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    """Marks ``names`` required in the JSON Schema (and drops their ``null`` default)."""

    def edit(schema: dict[str, Any]) -> None:
        schema["required"] = sorted({*schema.get("required", []), *names})
        for name in names:
            schema.get("properties", {}).get(name, {}).pop("default", None)

    return edit


def _requires(*names: str) -> ConfigDict:
    return ConfigDict(extra="forbid", strict=True, json_schema_extra=_documented_required(names))


def _user_id() -> Any:
    return Field(default=None, description="Optional; when given it must be your own user id (else 403).")


# -- requests ------------------------------------------------------------------------


class ChapterIn(Request):
    model_config = _requires("title", "content")
    title: RequiredTitle = None
    content: RequiredContent = None


class BookIn(Request):
    model_config = _requires("title")
    title: RequiredTitle = None
    metadata: dict[str, Any] | None = Field(default=None, description="Free-form JSON object (default `{}`); text fields such as "
                                            "`author` and `language` go into the epub's package metadata. " + _METADATA)
    chapters: list[ChapterIn] | None = Field(
        default=None, fail_fast=True, json_schema_extra={"maxItems": _LIMITS.chapters_per_book},
        description="Initial chapters, in order. All or nothing: one invalid chapter fails the whole request (422) "
                    f"and records nothing. At most {_LIMITS.chapters_per_book} chapters "
                    "(`INKSTREAM_MAX_CHAPTERS_PER_BOOK`). The book is created as one event of the log, so the whole "
                    "request takes at most 960 KiB as JSON; a bigger book is created with fewer chapters and grows "
                    "by adding the others." + _BOOK_SIZE)
    user_id: str | None = _user_id()


class BookPatch(Request):
    title: str | None = Field(default=None, json_schema_extra={"minLength": 1, "maxLength": MAX_TITLE, "pattern": r"\S"},
                              description="A new title; absent or null keeps the current one.")
    metadata: dict[str, Any] | None = Field(default=None, description="Replaces the whole metadata object; "
                                            "absent or null keeps it. At least one of title and metadata is required. "
                                            + _METADATA + _BOOK_SIZE)
    user_id: str | None = _user_id()


class ChapterAddIn(Request):
    model_config = _requires("title", "content")
    title: RequiredTitle = None
    content: RequiredContent = None
    # a number beyond 64 bits is no order at all (400, as everywhere); the range is the domain's to check
    # (422 with the book's own count), so it is only documented here
    order: int | None = Field(default=None, ge=-MAX_INT64 - 1, le=MAX_INT64,
                              json_schema_extra={"minimum": 1, "maximum": MAX_CHAPTERS},
                              description="1-based place to insert at (1 .. count+1, else 422); absent: appended. "
                                          f"A book has at most {_LIMITS.chapters_per_book} chapters "
                                          "(`INKSTREAM_MAX_CHAPTERS_PER_BOOK`)." + _BOOK_SIZE)
    user_id: str | None = _user_id()


class ChapterPatch(Request):
    title: str | None = Field(default=None, json_schema_extra={"minLength": 1, "maxLength": MAX_TITLE, "pattern": r"\S"},
                              description="A new title; absent or null keeps it.")
    content: str | None = Field(default=None, json_schema_extra={"maxLength": _LIMITS.chapter_bytes - 2},
                                description="New content; absent or null keeps it. At least one of title and content "
                                            "is required. " + _CONTENT["description"] + _BOOK_SIZE)
    user_id: str | None = _user_id()


class ReorderIn(Request):
    model_config = _requires("chapter_ids")
    chapter_ids: Annotated[list[str] | None, WithJsonSchema({
        "type": "array", "items": {"type": "string"}, "maxItems": MAX_CHAPTERS,
        "description": "Every current chapter id exactly once, in the new order (else 422)."})] = Field(
        default=None, fail_fast=True)
    user_id: str | None = _user_id()


# -- queries ---------------------------------------------------------------------------


class BookListQuery(ListQuery):
    pass


class ExportQuery(ReadQuery):
    model_config = ConfigDict(extra="allow", json_schema_extra=_documented_required(("format",)))
    format: Annotated[str | None, WithJsonSchema({
        "type": "string", "enum": list(FORMATS),
        "description": "text (text/plain), markdown (text/markdown), html (text/html) or epub "
                       "(application/epub+zip); anything else is a 422."})] = None


# -- answers ----------------------------------------------------------------------------


class BookChanged(BookOut):
    position: int


class BookDeleted(BookChanged):
    deleted: bool = Field(default=True, description="Always true: the book as it was when deleted.")


class BookPage(Answer):
    items: list[BookSummary]
    next_cursor: str | None = None


class ChapterChanged(ChapterOut):
    book_id: str
    book_version: int = Field(description="The book's version after the change (its ETag, for `If-Match`).")
    position: int


class ChapterRemoved(ChapterChanged):
    deleted: bool = Field(default=True, description="Always true: the chapter as it was, `order` where it was.")

