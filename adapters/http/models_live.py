"""The live endpoints' messages: what a client sends on ``/ws``, and ``GET /v1/events``'s query.

The server's own messages (pushes, ``subscribed``, ``caught_up``...) are
described in docs/live.md: OpenAPI has no words for a WebSocket protocol.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from adapters.http.models import MAX_POSITION, Request


class ClientMessage(Request):
    """``{"type": ..., "data": {...}}``."""

    type: str
    data: dict[str, Any] = Field(default_factory=dict)


class AuthIn(Request):
    token: str


class TopicIn(Request):
    """Exactly one of ``bucket_id``, ``job_id`` and ``migration_id``."""

    bucket_id: str | None = None
    job_id: str | None = None
    migration_id: str | None = None


class SubscribeIn(TopicIn):
    since: StrictInt | None = Field(default=None, le=MAX_POSITION)


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket_id: str | None = Field(default=None, description="One of your buckets (or give `job_id`).")
    job_id: str | None = Field(default=None, description="One of your jobs (or give `bucket_id`).")
    migration_id: str | None = Field(default=None, description="One of your migration runs.")
    since: int | None = Field(default=None, ge=0, le=MAX_POSITION,
                              description="Replay every matching change after this log position first. "
                                          "`Last-Event-ID` takes precedence when both are sent.")
