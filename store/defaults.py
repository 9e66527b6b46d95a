"""Settings a new template gets when the caller gives none (docs/api.md, "Default settings").

The default limits are the vocabulary's, shared with the engine."""

from __future__ import annotations

import copy
from typing import Any

from vocabulary import DEFAULT_LIMITS

DEFAULT_RUNTIME: dict[str, Any] = {"esm": True, "strict": True, "console": True}
DEFAULT_RESOLVER: dict[str, Any] = {
    "roots": ["."],
    "extensions": [".js", ".mjs"],
    "allow_absolute_repo_imports": False,
}


def default_settings() -> dict[str, dict[str, Any]]:
    """A fresh deep copy, so a caller mutating it can never change the defaults."""
    limits: dict[str, Any] = dict(DEFAULT_LIMITS.items())
    return {"limits": limits, "runtime": copy.deepcopy(DEFAULT_RUNTIME),
            "resolver": copy.deepcopy(DEFAULT_RESOLVER)}
