"""The domain: templates, sessions, the execution pipeline, limits policy, and the adapters
(CLI, HTTP, daemon) in `supervisor.adapters`, which import the core and are never imported by
it.

    from supervisor import Supervisor
    sup = Supervisor.open("vm-system.db")

`SupervisorApi` (supervisor/api.py) is the contract every supervisor implements, and
`open_supervisor` (supervisor/opening.py) opens one: sessions in this process or in workers.
This face also names what the supervisor's API hands out and raises, wherever it is defined
(the records and errors of the store among them), so that the adapters import it from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees; at run time each name is imported on first use
    from store import MAX_JSON_DEPTH, ExecutionNotFound, Session, StoreError, TemplateDetail
    from supervisor.api import RuntimeSummary, SupervisorApi
    from supervisor.boot import default_db_path
    from supervisor.core import Supervisor
    from supervisor.errors import NotFound, SessionBusy, SupervisorError
    from supervisor.logs import read_json_log
    from supervisor.opening import open_supervisor

# Lazy: `vm-system --help` imports this package and must not pay for the engine or the store.
_HOMES = {
    "Supervisor": "supervisor.core",
    "RuntimeSummary": "supervisor.api",
    "SupervisorApi": "supervisor.api",
    "open_supervisor": "supervisor.opening",
    "default_db_path": "supervisor.boot",
    "SupervisorError": "supervisor.errors",
    "NotFound": "supervisor.errors",
    "SessionBusy": "supervisor.errors",
    "read_json_log": "supervisor.logs",
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


__all__ = ["Supervisor", "RuntimeSummary", "SupervisorApi", "open_supervisor", "default_db_path",
           "SupervisorError", "NotFound", "StoreError", "ExecutionNotFound", "Session",
           "TemplateDetail", "MAX_JSON_DEPTH", "SessionBusy", "read_json_log"]
