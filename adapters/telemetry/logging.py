"""structlog set-up: JSON in production, console in development, a trace id on every line."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from adapters.telemetry.tracing import current_trace_id


def _add_trace_id(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    trace_id = current_trace_id()
    if trace_id and "trace_id" not in event:
        event["trace_id"] = trace_id
    return event


def configure_logging(fmt: str = "console", level: str = "info", stream: TextIO | None = None) -> None:
    """``stream``: where log lines go (stdout by default; one-shot CLI commands pass
    stderr so that their own output, e.g. ``audit --json``, stays machine-readable)."""
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    logging.basicConfig(level=level.upper(), format="%(message)s", stream=stream)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace_id,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=True,
    )
