"""The async Python SDK for the inkstream v1 HTTP contract (see README.md here)."""

from adapters.client.client import UNSET, InkstreamClient
from adapters.client.live import LiveEvent
from adapters.client.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InkstreamError,
    NotFoundError,
    PayloadTooLargeError,
    PreconditionFailedError,
    RateLimitedError,
    TokenExpiredError,
    UnauthorizedError,
    UnavailableError,
    ValidationFailedError,
)

__all__ = [
    "UNSET",
    "InkstreamClient",
    "LiveEvent",
    "InkstreamError",
    "BadRequestError",
    "UnauthorizedError",
    "TokenExpiredError",
    "ForbiddenError",
    "NotFoundError",
    "ConflictError",
    "PreconditionFailedError",
    "PayloadTooLargeError",
    "ValidationFailedError",
    "RateLimitedError",
    "UnavailableError",
]
