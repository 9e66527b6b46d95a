"""The domain: templates, sessions, the execution pipeline, limits policy, and the adapters
(CLI, HTTP, daemon) in `supervisor.adapters`, which import the core and are never imported by
it.

    from supervisor import Supervisor
    sup = Supervisor.open("vm-system.db")

`SupervisorApi` (supervisor/api.py) is the contract every supervisor implements, and
`open_supervisor` (supervisor/boot.py) opens one: sessions in this process or in workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what mypy sees; at run time each name is imported on first use
    from supervisor.api import RuntimeSummary, SupervisorApi
    from supervisor.boot import default_db_path, open_supervisor
    from supervisor.core import Supervisor

# Lazy: `vm-system --help` imports this package and must not pay for the engine.
_HOMES = {
    "Supervisor": "supervisor.core",
    "RuntimeSummary": "supervisor.api",
    "SupervisorApi": "supervisor.api",
    "open_supervisor": "supervisor.boot",
    "default_db_path": "supervisor.boot",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(home), name)


__all__ = ["Supervisor", "RuntimeSummary", "SupervisorApi", "open_supervisor", "default_db_path"]
