"""The domain: templates, sessions, the execution pipeline, limits policy, and the adapters
(CLI, HTTP, daemon) in `supervisor.adapters`, which import the core and are never imported by
it.

    from supervisor import Supervisor
    sup = Supervisor.open("vm-system.db")
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Lazy: `vm-system --help` imports this package and must not pay for the engine.
    if name in ("Supervisor", "RuntimeSummary"):
        from supervisor import core

        return getattr(core, name)
    raise AttributeError(name)


__all__ = ["Supervisor", "RuntimeSummary"]
