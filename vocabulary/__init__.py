"""The words every package of vm-system shares: limits, statuses, event types and error kinds.

It imports nothing but the standard library, so `sandbox` and `store`, which may never import
each other or `supervisor`, can take the same names from here instead of writing them out
again.
"""

from vocabulary.errors import ErrorKind, Subject
from vocabulary.events import EVENT_TYPES, TERMINAL_EVENT_TYPES, TERMINAL_FOR_STATUS, EventType
from vocabulary.limits import DEFAULT_CEILINGS, DEFAULT_LIMITS, LIMIT_NAMES, LimitName
from vocabulary.statuses import (
    EXECUTION_KINDS,
    EXECUTION_STATUSES,
    FINISHED_STATUSES,
    SESSION_STATUSES,
    STATUS_OF_KIND,
    ExecutionKind,
    ExecutionStatus,
    FinishedStatus,
    OutcomeErrorKind,
    SessionStatus,
)

__all__ = [
    "DEFAULT_CEILINGS",
    "DEFAULT_LIMITS",
    "EVENT_TYPES",
    "EXECUTION_KINDS",
    "EXECUTION_STATUSES",
    "FINISHED_STATUSES",
    "LIMIT_NAMES",
    "SESSION_STATUSES",
    "STATUS_OF_KIND",
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_FOR_STATUS",
    "ErrorKind",
    "EventType",
    "ExecutionKind",
    "ExecutionStatus",
    "FinishedStatus",
    "LimitName",
    "OutcomeErrorKind",
    "SessionStatus",
    "Subject",
]
