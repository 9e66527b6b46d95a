"""The domain: templates, sessions, the execution pipeline, limits policy, and the adapters
(CLI, HTTP, daemon) in `supervisor.adapters`, which import the core and are never imported by
it.

    from supervisor import Supervisor
    sup = Supervisor.open("vm-system.db")

This face also names what the supervisor's API hands out and raises, wherever it is defined
(the records and errors of the store among them), so that the adapters import it from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees; at run time each name is imported on first use
    from store import MAX_JSON_DEPTH, ExecutionNotFound, Session, StoreError, TemplateDetail
    from supervisor.core import RuntimeSummary, Supervisor
    from supervisor.errors import NotFound, SupervisorError

# Lazy: `vm-system --help` imports this package and must not pay for the engine or the store.
_HOMES = {
    "Supervisor": "supervisor.core",
    "RuntimeSummary": "supervisor.core",
    "SupervisorError": "supervisor.errors",
    "NotFound": "supervisor.errors",
    "StoreError": "store",
    "ExecutionNotFound": "store",
    "Session": "store",
    "TemplateDetail": "store",
    "MAX_JSON_DEPTH": "store",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(home), name)


__all__ = ["Supervisor", "RuntimeSummary", "SupervisorError", "NotFound", "StoreError",
           "ExecutionNotFound", "Session", "TemplateDetail", "MAX_JSON_DEPTH"]
