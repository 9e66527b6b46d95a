"""Settings a new template gets when the caller gives none (docs/api.md, "Default settings")."""

from __future__ import annotations

import copy
from typing import Any

DEFAULT_LIMITS: dict[str, Any] = {
    "cpu_ms": 2000,
    "wall_ms": 5000,
    "mem_mb": 128,
    "max_events": 50000,
    "max_output_kb": 256,
}
DEFAULT_RUNTIME: dict[str, Any] = {"esm": True, "strict": True, "console": True}
DEFAULT_RESOLVER: dict[str, Any] = {
    "roots": ["."],
    "extensions": [".js", ".mjs"],
    "allow_absolute_repo_imports": False,
}


def default_settings() -> dict[str, dict[str, Any]]:
    """A fresh deep copy, so a caller mutating it can never change the defaults."""
    return copy.deepcopy(
        {"limits": DEFAULT_LIMITS, "runtime": DEFAULT_RUNTIME, "resolver": DEFAULT_RESOLVER}
    )
