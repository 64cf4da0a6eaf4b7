"""A client for an OpenAI-compatible ``POST /v1/chat/completions``.

Only what text expansion needs: one request with a model and messages, the
first choice's ``message.content`` back. Transient answers (429, 5xx, a
dropped connection, no answer within the request timeout) are retried up to
``max_retries`` times, each wait honouring ``Retry-After`` (seconds or an
HTTP date, capped at ``max_retry_after``) or else growing exponentially.
Other 4xx answers are not retried (a wrong key or model will not fix itself).
A 200 whose body is not the wire format (no JSON, no choices, no string
content) is a malformed answer. Every failure is a ``ProcessorFailure`` with
code ``upstream_error`` and a message that says what was wrong, quoting the
start of the answer.

Cancelling the awaiting task cancels the HTTP request (the connection is
closed), which is how a cancelled or timed-out job stops its model call.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import aiohttp
import orjson

from adapters.processors.base import HttpSessions, ProcessorFailure

EXCERPT = 300


def completions_url(base_url: str) -> str:
    """``http://host:port`` or ``http://host:port/v1`` → ``…/v1/chat/completions``."""
    base = base_url.rstrip("/")
    return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


def retry_after_seconds(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _excerpt(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


def answer_text(raw: bytes) -> str:
    """``choices[0].message.content`` of a chat completion, or a malformed-answer failure."""
    def malformed(why: str) -> ProcessorFailure:
        return ProcessorFailure("upstream_error", f"malformed answer from the model endpoint: {why}: {_excerpt(raw)!r}")

    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise malformed("not JSON") from None
    if not isinstance(body, dict):
        raise malformed("not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise malformed("no choices")
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or not content.strip():
        raise malformed("choices[0].message.content is not a non-empty string")
    return content


class ChatCompletions:
    def __init__(
        self,
        base_url: str,
        http: HttpSessions,
        *,
        api_key: str = "",
        request_timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 60.0,
    ) -> None:
        self.url = completions_url(base_url)
        self._http = http
        self._api_key = api_key
        self._timeout = request_timeout
        self._retries = max(0, max_retries)
        self._backoff = backoff
        self._max_retry_after = max_retry_after

    async def complete(self, model: str, messages: list[dict[str, str]]) -> str:
        body = orjson.dumps({"model": model, "messages": messages})
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        problem = ""
        for attempt in range(self._retries + 1):
            wait: float | None = None
            try:
                async with self._http.get().post(
                    self.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=self._timeout)
                ) as response:
                    raw = await response.read()
                    if response.status == 200:
                        return answer_text(raw)
                    problem = f"answered {response.status}: {_excerpt(raw)!r}"
                    if response.status != 429 and response.status < 500:
                        raise ProcessorFailure("upstream_error", f"the model endpoint {problem}", retryable=False)
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                problem = (f"gave no answer within {self._timeout:g} s" if isinstance(exc, asyncio.TimeoutError)
                           else f"could not be reached ({type(exc).__name__}: {exc})")
            if attempt < self._retries:
                delay = wait if wait is not None else self._backoff * 2**attempt
                await asyncio.sleep(min(delay, self._max_retry_after))
        tries = self._retries + 1
        raise ProcessorFailure("upstream_error", f"the model endpoint {problem} ({tries} attempt{'s' * (tries > 1)})")


def chat_messages(system: str, user: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
