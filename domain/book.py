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
from dataclasses import dataclass, replace
from typing import Any

from eventsourcing.domain import event

from domain.base import InkAggregate
from domain.errors import FieldError, NotFound, ValidationFailed, unstorable_reason
from domain.ids import new_id

MAX_TITLE = 500
MAX_CHAPTERS = 10_000


@dataclass(frozen=True, slots=True)
class Chapter:
    id: str
    title: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "title": self.title, "content": self.content}


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


def _json_errors(path: str, value: object) -> list[FieldError]:
    if isinstance(value, str):
        problem = unstorable_reason(value)
        return [FieldError(path, f"value {problem}")] if problem else []
    if isinstance(value, Mapping):
        errors: list[FieldError] = []
        for key, item in value.items():
            key_path = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if not isinstance(key, str) or unstorable_reason(key):
                errors.append(FieldError(key_path, "keys must be strings without NUL characters"))
            else:
                errors.extend(_json_errors(key_path, item))
        return errors
    if isinstance(value, list):
        return [e for i, item in enumerate(value) for e in _json_errors(f"{path}/{i}", item)]
    if value is None or isinstance(value, (bool, int, float)):
        return []
    return [FieldError(path, "must be a JSON value")]


def metadata_errors(value: object) -> list[FieldError]:
    if not isinstance(value, Mapping):
        return [FieldError("/metadata", "metadata must be an object")]
    return _json_errors("/metadata", value)


def chapters_errors(value: object) -> list[FieldError]:
    """Every problem of every chapter, so one answer lists them all."""
    if not isinstance(value, list):
        return [FieldError("/chapters", "chapters must be an array")]
    if len(value) > MAX_CHAPTERS:
        return [FieldError("/chapters", f"a book has at most {MAX_CHAPTERS} chapters")]
    errors: list[FieldError] = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            errors.append(FieldError(f"/chapters/{i}", "chapter must be an object"))
            continue
        errors += title_errors(f"/chapters/{i}/title", item.get("title"), present="title" in item)
        errors += content_errors(f"/chapters/{i}/content", item.get("content"), present="content" in item)
    return errors


def _fail(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed("; ".join(f"{e.path or '/'}: {e.message}" for e in errors[:5]), errors)


class Book(InkAggregate):
    TYPE = "book"

    @classmethod
    def create(
        cls,
        owner_id: str,
        title: object,
        metadata: object = None,
        chapters: object = None,
    ) -> Book:
        """Validates everything first and reports every error: nothing is recorded unless all is valid."""
        metadata = {} if metadata is None else metadata
        chapters = [] if chapters is None else chapters
        errors = title_errors("/title", title) + metadata_errors(metadata) + chapters_errors(chapters)
        _fail(errors)
        assert isinstance(title, str) and isinstance(metadata, Mapping) and isinstance(chapters, list)
        return cls(
            owner_id=owner_id,
            title=title,
            metadata=copy.deepcopy(dict(metadata)),
            chapters=[{"id": new_id(), "title": c["title"], "content": c["content"]} for c in chapters],
        )

    @event("Created")
    def __init__(self, owner_id: str, title: str, metadata: dict[str, Any], chapters: list[dict[str, str]]) -> None:
        self.owner_id = owner_id
        self.title = title
        self.metadata = copy.deepcopy(metadata)
        self._chapters = {c["id"]: Chapter(c["id"], c["title"], c["content"]) for c in chapters}
        self._order = [c["id"] for c in chapters]
        self.last_added_chapter_id: str | None = None
        self.deleted = False

    # -- reading ---------------------------------------------------------

    @property
    def chapters(self) -> list[Chapter]:
        """In order; a chapter's 1-based ``order`` is its index plus one."""
        return [self._chapters[cid] for cid in self._order]

    @property
    def chapter_ids(self) -> list[str]:
        return list(self._order)

    def chapter(self, chapter_id: str) -> Chapter:
        found = self._chapters.get(chapter_id)
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

    def update(self, title: object = None, metadata: object = None) -> None:
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
            errors += metadata_errors(metadata)
        _fail(errors)
        assert (title is None or isinstance(title, str)) and (metadata is None or isinstance(metadata, Mapping))
        self._updated(title=title, metadata=None if metadata is None else copy.deepcopy(dict(metadata)))

    @event("Updated")
    def _updated(self, title: str | None, metadata: dict[str, Any] | None) -> None:
        if title is not None:
            self.title = title
        if metadata is not None:
            self.metadata = copy.deepcopy(metadata)

    def add_chapter(self, title: object, content: object, order: object = None) -> str:
        """Insert at the 1-based ``order`` (1 .. count+1), or append; returns the new chapter's id."""
        self.ensure_live()
        errors = title_errors("/title", title) + content_errors("/content", content)
        count = len(self._order)
        if order is not None and (not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= count + 1):
            errors.append(FieldError("/order", f"order must be an integer from 1 to {count + 1}"))
        if count >= MAX_CHAPTERS:
            errors.append(FieldError("", f"a book has at most {MAX_CHAPTERS} chapters"))
        _fail(errors)
        assert isinstance(title, str) and isinstance(content, str) and (order is None or isinstance(order, int))
        chapter_id = new_id()
        ids = list(self._order)
        ids.insert(count if order is None else order - 1, chapter_id)
        self._chapter_added(chapter={"id": chapter_id, "title": title, "content": content}, chapter_ids=ids)
        return chapter_id

    @event("ChapterAdded")
    def _chapter_added(self, chapter: dict[str, str], chapter_ids: list[str]) -> None:
        self._chapters[chapter["id"]] = Chapter(chapter["id"], chapter["title"], chapter["content"])
        self._order = list(chapter_ids)
        self.last_added_chapter_id = chapter["id"]

    def edit_chapter(self, chapter_id: str, title: object = None, content: object = None) -> None:
        """Change a chapter's title and/or content; ``None`` leaves a field as it is."""
        self.ensure_live()
        self.chapter(chapter_id)
        if title is None and content is None:
            _fail([FieldError("", "title or content is required")])
        errors: list[FieldError] = []
        if title is not None:
            errors += title_errors("/title", title)
        if content is not None:
            errors += content_errors("/content", content)
        _fail(errors)
        assert (title is None or isinstance(title, str)) and (content is None or isinstance(content, str))
        self._chapter_edited(chapter_id=chapter_id, title=title, content=content)

    @event("ChapterEdited")
    def _chapter_edited(self, chapter_id: str, title: str | None, content: str | None) -> None:
        chapter = self._chapters[chapter_id]
        if title is not None:
            chapter = replace(chapter, title=title)
        if content is not None:
            chapter = replace(chapter, content=content)
        self._chapters[chapter_id] = chapter

    def remove_chapter(self, chapter_id: str) -> None:
        self.ensure_live()
        self.chapter(chapter_id)
        self._chapter_removed(chapter_id=chapter_id, chapter_ids=[c for c in self._order if c != chapter_id])

    @event("ChapterRemoved")
    def _chapter_removed(self, chapter_id: str, chapter_ids: list[str]) -> None:
        self._chapters.pop(chapter_id, None)
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
            if not isinstance(cid, str) or cid not in self._chapters:
                errors.append(FieldError(f"/chapter_ids/{i}", "not a chapter of this book"))
            elif cid in seen:
                errors.append(FieldError(f"/chapter_ids/{i}", "duplicate chapter id"))
            else:
                seen.add(cid)
        missing = [cid for cid in self._order if cid not in seen]
        if missing:
            errors.append(
                FieldError(
                    "/chapter_ids", f"must be a permutation of the book's chapters; missing {', '.join(missing)}"
                )
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
