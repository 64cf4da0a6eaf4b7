"""Books: a title, free-form metadata and an ordered list of chapters.

Chapters are entities inside the aggregate, so "all or nothing" holds by
construction: a book created with its chapters is one ``Created`` event, and
every change to a chapter is one event on the book.

Chapter order is 1-based everywhere (``order`` in answers, the ``order`` of an
added chapter, and ``Chapter n`` in exports). Events that change which chapters
exist or their order (``ChapterAdded``, ``ChapterRemoved``, ``ChaptersReordered``)
carry the resulting ``chapter_ids``: a pure projection maps each event to row
changes without reading the read model, and it needs the whole order to do so.

Text is checked for NUL characters and lone surrogates: PostgreSQL ``text`` and
``jsonb`` refuse the first and the JSON encoder the second, so letting them in
would halt the books projection on an event it can never apply.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.domain import event

from domain.base import InkAggregate
from domain.errors import (
    MAX_LISTED_ERRORS,
    FieldError,
    NotFound,
    ValidationFailed,
    cut_short,
    size_error,
    storable_errors,
    unstorable_reason,
)
from domain.ids import new_id
from domain.limits import CEILINGS, MAX_EVENT_BYTES, Limits, encoded_size

MAX_TITLE = 500
MAX_CHAPTERS = CEILINGS["chapters_per_book"]
"""The most chapters any setting allows (``Limits.chapters_per_book`` is the one in force)."""
MISSING_NAMED = 20
"""Missing chapter ids a refused reorder names (a book may have thousands)."""


@dataclass(frozen=True, slots=True)
class Chapter:
    id: str
    title: str
    content: str
    size: int = field(default=-1, compare=False, repr=False)
    """Bytes of the title and content as JSON (``chapter_size``; set by ``make_chapter``)."""

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "content": self.content}


def chapter_size(title: str, content: str) -> int:
    """What a chapter weighs against ``Limits.chapter_bytes`` and ``book_bytes``: its title and content as JSON."""
    return encoded_size(title) + encoded_size(content)


def make_chapter(chapter_id: str, title: str, content: str) -> Chapter:
    return Chapter(chapter_id, title, content, chapter_size(title, content))


def title_errors(path: str, value: object, *, present: bool = True) -> list[FieldError]:
    """A title is a non-blank string; missing, null and blank all read "title is required"."""
    if not present or value is None or (isinstance(value, str) and not value.strip()):
        return [FieldError(path, "title is required")]
    if not isinstance(value, str):
        return [FieldError(path, "title must be a string")]
    if len(value) > MAX_TITLE:
        return [FieldError(path, f"title must be at most {MAX_TITLE} characters")]
    problem = unstorable_reason(value)
    return [FieldError(path, f"title {problem}")] if problem else []


def content_errors(path: str, value: object, *, present: bool = True) -> list[FieldError]:
    """Content is a string, possibly empty."""
    if not present or value is None:
        return [FieldError(path, "content is required")]
    if not isinstance(value, str):
        return [FieldError(path, "content must be a string")]
    problem = unstorable_reason(value)
    return [FieldError(path, f"content {problem}")] if problem else []


def chapter_size_errors(path: str, title: object, content: object, limits: Limits) -> list[FieldError]:
    """The chapter's size against ``limits.chapter_bytes`` (only once title and content are valid text)."""
    if not isinstance(title, str) or not isinstance(content, str):
        return []
    error = size_error(path, "the chapter (title and content)", chapter_size(title, content), limits.chapter_bytes)
    return [error] if error else []


def metadata_errors(value: object, limits: Limits) -> list[FieldError]:
    """A JSON object the log can hold (iteratively checked: any depth is safe to inspect), within ``limits``."""
    if not isinstance(value, Mapping):
        return [FieldError("/metadata", "metadata must be an object")]
    errors = storable_errors(dict(value), "/metadata")
    if errors:
        return errors
    error = size_error("/metadata", "metadata", encoded_size(dict(value)), limits.metadata_bytes)
    return [error] if error else []


def chapters_errors(value: object, limits: Limits) -> list[FieldError]:
    """Every problem of every chapter, so one answer lists them all."""
    if not isinstance(value, list):
        return [FieldError("/chapters", "chapters must be an array")]
    if len(value) > limits.chapters_per_book:
        return [FieldError("/chapters", f"a book has at most {limits.chapters_per_book} chapters")]
    errors: list[FieldError] = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            errors.append(FieldError(f"/chapters/{i}", "chapter must be an object"))
            continue
        title, content = item.get("title"), item.get("content")
        problems = title_errors(f"/chapters/{i}/title", title, present="title" in item)
        problems += content_errors(f"/chapters/{i}/content", content, present="content" in item)
        errors += problems or chapter_size_errors(f"/chapters/{i}", title, content, limits)
    return errors


def book_size_error(size: int, limits: Limits) -> list[FieldError]:
    error = size_error("", "the book (title, metadata and every chapter)", size, limits.book_bytes)
    return [error] if error else []


def _title_and_content(pair: object) -> tuple[str, str]:
    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
        raise TypeError("a snapshot's chapter is [title, content]")
    return pair[0], pair[1]


def _fail(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed("; ".join(f"{e.path or '/'}: {e.message}" for e in errors[:5]), errors)


class Book(InkAggregate):
    """A book and its chapters; ``size`` is what it weighs against ``Limits.book_bytes``.

    ``size`` is kept up to date by the ``@event`` bodies (each adds or takes
    away what its event changed), so a command checks the book's total
    without measuring every chapter again. Every command takes the
    ``Limits`` in force; the events never depend on them.
    """

    TYPE = "book"

    @classmethod
    def create(
        cls,
        owner_id: str,
        title: object,
        metadata: object = None,
        chapters: object = None,
        limits: Limits = Limits(),
    ) -> Book:
        """Validates everything first and reports every error: nothing is recorded unless all is valid.

        The book and its chapters are one ``Created`` event, which must fit in
        one message of the log (``MAX_EVENT_BYTES``): a bigger book is created
        with fewer chapters and grows by adding the rest.
        """
        metadata = {} if metadata is None else metadata
        chapters = [] if chapters is None else chapters
        errors = title_errors("/title", title) + metadata_errors(metadata, limits) + chapters_errors(chapters, limits)
        _fail(errors)
        assert isinstance(title, str) and isinstance(metadata, Mapping) and isinstance(chapters, list)
        data = {
            "owner_id": owner_id,
            "title": title,
            "metadata": copy.deepcopy(dict(metadata)),
            "chapters": [{"id": new_id(), "title": c["title"], "content": c["content"]} for c in chapters],
        }
        _fail(book_size_error(encoded_size(title) + encoded_size(data["metadata"])
                              + sum(chapter_size(c["title"], c["content"]) for c in chapters), limits))
        size = encoded_size(data)
        if size > MAX_EVENT_BYTES:
            _fail([FieldError("/chapters", f"a book is created as one event of at most {MAX_EVENT_BYTES} bytes as "
                                           f"JSON and this one takes {size}: create it with fewer chapters, then "
                                           "add the others one by one")])
        return cls(**data)

    @event("Created")
    def __init__(self, owner_id: str, title: str, metadata: dict[str, Any], chapters: list[dict[str, str]]) -> None:
        self.owner_id = owner_id
        self.title = title
        self.metadata = copy.deepcopy(metadata)
        self._chapters = {c["id"]: make_chapter(c["id"], c["title"], c["content"]) for c in chapters}
        self._order = [c["id"] for c in chapters]
        self.last_added_chapter_id: str | None = None
        self.deleted = False
        self.size = (encoded_size(title) + encoded_size(metadata)
                     + sum(c.size for c in self._chapters.values()))

    @classmethod
    def snapshot_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        """Chapters as ``[title, content]`` by id (a ``Chapter``'s size is computed again)."""
        return {**state, "_chapters": {cid: [c.title, c.content] for cid, c in state["_chapters"].items()}}

    @classmethod
    def state_from_snapshot(cls, state: dict[str, Any]) -> dict[str, Any]:
        chapters = state["_chapters"]
        if not isinstance(chapters, dict):
            raise TypeError("a snapshot's chapters are an object")
        return {**state, "_chapters": {cid: make_chapter(cid, *_title_and_content(pair)) for cid, pair in chapters.items()}}

    # -- reading ---------------------------------------------------------

    @property
    def chapters(self) -> list[Chapter]:
        """In order; a chapter's 1-based ``order`` is its index plus one."""
        return [self._chapters[cid] for cid in self._order]

    @property
    def chapter_ids(self) -> list[str]:
        return list(self._order)

    def chapter(self, chapter_id: str) -> Chapter:
        found = self._chapters.get(chapter_id) if isinstance(chapter_id, str) else None
        if found is None:
            raise NotFound(f"chapter {chapter_id}")
        return found

    def order_of(self, chapter_id: str) -> int:
        """The chapter's 1-based position."""
        self.chapter(chapter_id)
        return self._order.index(chapter_id) + 1

    def ensure_live(self) -> None:
        if self.deleted:
            raise NotFound(f"book {self.id_str}")

    # -- commands --------------------------------------------------------

    def update(self, title: object = None, metadata: object = None, limits: Limits = Limits()) -> None:
        """Retitle and/or replace the metadata in one event (a PATCH is one command).

        ``None`` leaves a field as it is; ``metadata`` replaces the whole object.
        """
        self.ensure_live()
        if title is None and metadata is None:
            _fail([FieldError("", "title or metadata is required")])
        errors: list[FieldError] = []
        if title is not None:
            errors += title_errors("/title", title)
        if metadata is not None:
            errors += metadata_errors(metadata, limits)
        _fail(errors)
        assert (title is None or isinstance(title, str)) and (metadata is None or isinstance(metadata, Mapping))
        new_metadata = None if metadata is None else copy.deepcopy(dict(metadata))
        _fail(book_size_error(self.size + self._delta(title, new_metadata), limits))
        self._updated(title=title, metadata=new_metadata)

    def _delta(self, title: str | None, metadata: dict[str, Any] | None) -> int:
        """How much the book's size changes when its title and/or metadata are replaced."""
        delta = 0
        if title is not None:
            delta += encoded_size(title) - encoded_size(self.title)
        if metadata is not None:
            delta += encoded_size(metadata) - encoded_size(self.metadata)
        return delta

    @event("Updated")
    def _updated(self, title: str | None, metadata: dict[str, Any] | None) -> None:
        self.size += self._delta(title, metadata)
        if title is not None:
            self.title = title
        if metadata is not None:
            self.metadata = copy.deepcopy(metadata)

    def add_chapter(self, title: object, content: object, order: object = None, limits: Limits = Limits()) -> str:
        """Insert at the 1-based ``order`` (1 .. count+1), or append; returns the new chapter's id."""
        self.ensure_live()
        errors = title_errors("/title", title) + content_errors("/content", content)
        errors = errors or chapter_size_errors("", title, content, limits)
        count = len(self._order)
        if order is not None and (not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= count + 1):
            errors.append(FieldError("/order", f"order must be an integer from 1 to {count + 1}"))
        if count >= limits.chapters_per_book:
            errors.append(FieldError("", f"a book has at most {limits.chapters_per_book} chapters"))
        _fail(errors)
        assert isinstance(title, str) and isinstance(content, str) and (order is None or isinstance(order, int))
        _fail(book_size_error(self.size + chapter_size(title, content), limits))
        chapter_id = new_id()
        ids = list(self._order)
        ids.insert(count if order is None else order - 1, chapter_id)
        self._chapter_added(chapter={"id": chapter_id, "title": title, "content": content}, chapter_ids=ids)
        return chapter_id

    @event("ChapterAdded")
    def _chapter_added(self, chapter: dict[str, str], chapter_ids: list[str]) -> None:
        added = make_chapter(chapter["id"], chapter["title"], chapter["content"])
        self._chapters[added.id] = added
        self.size += added.size
        self._order = list(chapter_ids)
        self.last_added_chapter_id = chapter["id"]

    def edit_chapter(
        self, chapter_id: str, title: object = None, content: object = None, limits: Limits = Limits()
    ) -> None:
        """Change a chapter's title and/or content; ``None`` leaves a field as it is."""
        self.ensure_live()
        old = self.chapter(chapter_id)
        if title is None and content is None:
            _fail([FieldError("", "title or content is required")])
        errors: list[FieldError] = []
        if title is not None:
            errors += title_errors("/title", title)
        if content is not None:
            errors += content_errors("/content", content)
        _fail(errors)
        assert (title is None or isinstance(title, str)) and (content is None or isinstance(content, str))
        new_title, new_content = old.title if title is None else title, old.content if content is None else content
        _fail(chapter_size_errors("", new_title, new_content, limits))
        _fail(book_size_error(self.size - old.size + chapter_size(new_title, new_content), limits))
        self._chapter_edited(chapter_id=chapter_id, title=title, content=content)

    @event("ChapterEdited")
    def _chapter_edited(self, chapter_id: str, title: str | None, content: str | None) -> None:
        old = self._chapters[chapter_id]
        edited = make_chapter(chapter_id, old.title if title is None else title,
                              old.content if content is None else content)
        self._chapters[chapter_id] = edited
        self.size += edited.size - old.size

    def remove_chapter(self, chapter_id: str) -> None:
        self.ensure_live()
        self.chapter(chapter_id)
        self._chapter_removed(chapter_id=chapter_id, chapter_ids=[c for c in self._order if c != chapter_id])

    @event("ChapterRemoved")
    def _chapter_removed(self, chapter_id: str, chapter_ids: list[str]) -> None:
        removed = self._chapters.pop(chapter_id, None)
        if removed is not None:
            self.size -= removed.size
        self._order = list(chapter_ids)

    def reorder(self, chapter_ids: object) -> None:
        """``chapter_ids`` must name every current chapter exactly once."""
        self.ensure_live()
        _fail(self._permutation_errors(chapter_ids))
        assert isinstance(chapter_ids, list)
        self._chapters_reordered(chapter_ids=list(chapter_ids))

    def _permutation_errors(self, chapter_ids: object) -> list[FieldError]:
        if not isinstance(chapter_ids, list):
            return [FieldError("/chapter_ids", "chapter_ids must be an array")]
        errors: list[FieldError] = []
        seen: set[str] = set()
        for i, cid in enumerate(chapter_ids):
            if len(errors) > MAX_LISTED_ERRORS:
                return cut_short(errors)  # a megabyte of bad ids: enough said
            if not isinstance(cid, str) or cid not in self._chapters:
                errors.append(FieldError(f"/chapter_ids/{i}", "not a chapter of this book"))
            elif cid in seen:
                errors.append(FieldError(f"/chapter_ids/{i}", "duplicate chapter id"))
            else:
                seen.add(cid)
        missing = [cid for cid in self._order if cid not in seen]
        if missing:
            named = ", ".join(missing[:MISSING_NAMED])
            more = f" and {len(missing) - MISSING_NAMED} more" if len(missing) > MISSING_NAMED else ""
            errors.append(
                FieldError("/chapter_ids", f"must be a permutation of the book's chapters; missing {named}{more}")
            )
        return errors

    @event("ChaptersReordered")
    def _chapters_reordered(self, chapter_ids: list[str]) -> None:
        self._order = list(chapter_ids)

    def delete(self) -> None:
        self.ensure_live()
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True
