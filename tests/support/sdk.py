"""The tests' users are SDK clients (adapters/client), as a user of inkstream would have."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import aiohttp
import pytest

from adapters.client import InkstreamClient, InkstreamError

E = TypeVar("E", bound=InkstreamError)


async def new_client(base_url: str, prefix: str = "user", *, session: aiohttp.ClientSession | None = None,
                     **options: Any) -> InkstreamClient:
    """A freshly registered user's client (its token kept). With ``session`` the client shares it (and never closes it).

    Test clients back off briefly and wait out 429s: one user issues hundreds of
    requests in some tests, and the per-user rate limit says when to go on.
    """
    options = {"backoff": 0.05, "retry_rate_limited": True, **options}
    ink = InkstreamClient(base_url, session=session, **options)
    await ink.register(f"{prefix}-{uuid.uuid4().hex[:12]}@example.com", "pw-" + uuid.uuid4().hex[:12], prefix)
    return ink


@contextmanager
def fails(kind: type[E], phrase: str | None = None) -> Iterator[pytest.ExceptionInfo[E]]:
    """``with fails(NotFoundError): ...``: the SDK raised ``kind`` for its own problem code and status,
    with a detail starting with ``phrase`` (by default the code in words: "not found")."""
    with pytest.raises(kind) as caught:
        yield caught
    err = caught.value
    assert (err.status, err.code) == (kind.default_status, kind.default_code), repr(err)
    expected = phrase if phrase is not None else kind.default_code.replace("_", " ")
    assert err.detail.startswith(expected), repr(err)


#: The ``sign_up`` fixture's type: ``await sign_up(prefix, **client_options) -> InkstreamClient``.
SignUp = Callable[..., Awaitable[InkstreamClient]]
