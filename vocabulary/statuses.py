"""Statuses of sessions and executions, the kinds of executions, and the kinds of error that
end an evaluation (an outcome's `error.kind`, stored with the execution)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

SessionStatus = Literal["starting", "ready", "crashed", "closed"]
SESSION_STATUSES: frozenset[SessionStatus] = frozenset(get_args(SessionStatus))

ExecutionKind = Literal["startup", "repl", "run_file", "run"]
EXECUTION_KINDS: frozenset[ExecutionKind] = frozenset(get_args(ExecutionKind))

# How an evaluation ended: the status of its outcome, and of its execution once finished.
FinishedStatus = Literal["ok", "error", "timeout", "limit_exceeded", "cancelled", "crashed"]
ExecutionStatus = Literal["running", FinishedStatus]
FINISHED_STATUSES: frozenset[FinishedStatus] = frozenset(get_args(FinishedStatus))
EXECUTION_STATUSES: frozenset[ExecutionStatus] = frozenset(get_args(ExecutionStatus))

OutcomeErrorKind = Literal["exception", "timeout", "cpu_limit", "memory_limit", "stack_overflow",
                           "output_limit", "event_limit", "host_call_limit", "host_bytes_limit",
                           "deadlock", "cancelled", "internal"]

# Which status an evaluation that ended with an error of each kind gets. Keyed by str: it is
# looked up with kinds read back from anywhere (a row, a payload).
STATUS_OF_KIND: Mapping[str, FinishedStatus] = MappingProxyType({
    "exception": "error",
    "timeout": "timeout",
    "cpu_limit": "timeout",
    "memory_limit": "limit_exceeded",
    "stack_overflow": "limit_exceeded",
    "output_limit": "limit_exceeded",
    "event_limit": "limit_exceeded",
    "host_call_limit": "limit_exceeded",
    "host_bytes_limit": "limit_exceeded",
    # A module awaits a promise that nothing pending can settle: the script's own error.
    "deadlock": "error",
    "cancelled": "cancelled",
    "internal": "crashed",
})
