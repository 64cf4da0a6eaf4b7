"""``text-expansion``: an input's ``outline`` expanded into ``content``.

Config: ``model`` (required: what to ask the model endpoint for) and an
optional ``prompt`` template in which ``{outline}`` and ``{title}`` are
replaced (plain replacement, no other braces are special; without
``{outline}`` the outline follows the prompt).

* With ``INKSTREAM_LLM_BASE_URL`` it asks that OpenAI-compatible endpoint
  (``adapters.processors.openai_compatible``) and validates the document it
  builds from the answer against the output schema: an answer that does not
  fit is an ``upstream_error`` (retried, like any other bad answer).
* Without it, the built-in offline expander writes deterministic prose that
  carries every key term of the outline (``adapters.processors.offline_expander``).
  It is the offline default, recorded as ``engine: offline-expander`` in the
  job's ``Completed`` event, and never presented as a model.

The output document is the input's fields with ``outline`` replaced by
``content``; when the output schema wants the ``outline`` kept (and refuses
the document without it), it is kept.
"""

from __future__ import annotations

from typing import Any

from adapters.processors.base import Output, ProcessorDeps, ProcessorFailure, RunContext, unknown_keys
from adapters.processors.offline_expander import expand
from adapters.processors.openai_compatible import ChatCompletions, chat_messages
from domain.errors import FieldError

MAX_MODEL = 200
MAX_PROMPT = 20_000
MAX_OUTLINE = 100_000
OFFLINE_ENGINE = "offline-expander"

SYSTEM_PROMPT = (
    "You are a writing assistant. Expand the outline you are given into finished prose for the chapter. "
    "Keep every key term of the outline. Answer with the prose only, without a preamble."
)
DEFAULT_PROMPT = "Title: {title}\n\nOutline:\n{outline}"


def render_prompt(template: str | None, outline: str, title: str | None) -> str:
    template = template or DEFAULT_PROMPT
    if template is DEFAULT_PROMPT and not title:
        template = "Outline:\n{outline}"
    text = template.replace("{title}", title or "")
    if "{outline}" in text:
        return text.replace("{outline}", outline)
    return f"{text}\n\n{outline}"


def documents(data: dict[str, Any], content: str) -> list[dict[str, Any]]:
    """The output documents to offer the output schema, preferred first."""
    without = {k: v for k, v in data.items() if k != "outline"}
    return [{**without, "content": content}, {**data, "content": content}]


class TextExpansion:
    name = "text-expansion"

    def __init__(self, model_endpoint: ChatCompletions | None) -> None:
        self._model = model_endpoint

    async def check_config(self, config: dict[str, Any]) -> list[FieldError]:
        errors = unknown_keys(config, ("model", "prompt"))
        model = config.get("model")
        if not isinstance(model, str) or not model.strip() or len(model) > MAX_MODEL:
            errors.append(FieldError("/config/model", f"model is required: a non-blank string of at most {MAX_MODEL} characters"))
        prompt = config.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT):
            errors.append(FieldError("/config/prompt", f"prompt must be a string of at most {MAX_PROMPT} characters"))
        return errors

    def check_input(self, config: dict[str, Any], data: Any) -> list[FieldError]:
        if not isinstance(data, dict):
            return [FieldError("/data", "the input must be an object with an outline")]
        outline = data.get("outline")
        if not isinstance(outline, str) or not outline.strip():
            return [FieldError("/data/outline", "outline is required: a non-empty string")]
        if len(outline) > MAX_OUTLINE:
            return [FieldError("/data/outline", f"outline must be at most {MAX_OUTLINE} characters")]
        return []

    async def run(self, config: dict[str, Any], data: Any, ctx: RunContext) -> Output:
        problems = self.check_input(config, data)
        if problems:
            raise ProcessorFailure("invalid_output", f"cannot expand: {problems[0].message}", retryable=False)
        outline = data["outline"]
        title = data.get("title") if isinstance(data.get("title"), str) else None
        if self._model is None:
            return Output(await self._fit(documents(data, expand(outline, title)), ctx, upstream=False), OFFLINE_ENGINE)
        prompt = render_prompt(config.get("prompt"), outline, title)
        text = await self._model.complete(config["model"], chat_messages(SYSTEM_PROMPT, prompt))
        return Output(await self._fit(documents(data, text.strip()), ctx, upstream=True),
                      f"openai-compatible {config['model']}")

    async def _fit(self, candidates: list[dict[str, Any]], ctx: RunContext, *, upstream: bool) -> dict[str, Any]:
        if ctx.output_schema is None:
            return candidates[0]
        first: list[FieldError] = []
        for candidate in candidates:
            errors = await ctx.validate_output(candidate)
            if not errors:
                return candidate
            first = first or errors
        if not upstream:
            return candidates[0]  # the runner reports it as invalid_output
        detail = "; ".join(f"{e.path or '/'}: {e.message}" for e in first[:5])
        raise ProcessorFailure("upstream_error", f"the model's answer does not satisfy {ctx.output_schema}: {detail}")


def make_text_expansion(deps: ProcessorDeps) -> TextExpansion:
    endpoint = None
    if deps.llm_base_url:
        endpoint = ChatCompletions(deps.llm_base_url, deps.http, api_key=deps.llm_api_key,
                                   request_timeout=deps.llm_timeout_seconds, max_retries=deps.llm_max_retries)
    return TextExpansion(endpoint)
