"""Logging: structlog, JSON lines for machines, readable lines on a terminal, always stderr."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Literal

import structlog

Format = Literal["json", "console"]


def configure_logging(level: str = "info", fmt: Format | None = None) -> None:
    """Route structlog to stderr; `fmt` defaults to readable on a terminal, JSON otherwise."""
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def read_json_log(path: Path) -> list[dict[str, Any]]:
    """The JSON log records in a file the daemon's stderr went to; other lines are skipped."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records
