"""The one factory the daemon and the benchmarks open a supervisor with: sessions in this
process or in worker processes, the same contract (`SupervisorApi`) either way.

    from supervisor import open_supervisor
    with open_supervisor("vm-system.db", workers=2) as sup:   # workers=0: in this process
        ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Unpack

from supervisor.api import SupervisorApi
from supervisor.boot import OpenOptions


def open_supervisor(db_path: str | Path, *, workers: int = 0, log_format: str | None = None,
                    log_level: str = "info", **options: Unpack[OpenOptions]) -> SupervisorApi:
    """A supervisor with its sessions in this process (`workers=0`) or in `workers` worker
    processes, which log to this process's stderr (`log_format` as `configure_logging` takes
    it, lines below `log_level` dropped)."""
    # Imported when used: the in-process one need not pay for the worker machinery.
    if workers:
        from supervisor.shards import ShardedSupervisor

        return ShardedSupervisor.open(db_path, workers=workers, log_format=log_format,
                                      log_level=log_level, **options)
    from supervisor.core import Supervisor

    return Supervisor.open(db_path, **options)
