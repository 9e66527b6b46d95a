"""Ids: every id a client sends is a UUID, checked before any lookup."""

from __future__ import annotations

import uuid

from supervisor.errors import ValidationError


def check_uuid(value: object, name: str) -> str:
    """The canonical (lower-case) form of a UUID, or VALIDATION_ERROR `<name> must be a valid UUID`."""
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise ValidationError(f"{name} must be a valid UUID", field=name)


def execution_label(label: str | None) -> str | None:
    """A sandbox checkpoint label as an execution id: the supervisor labels checkpoints with
    the execution after which they were taken; any other label (the spawn state) is None."""
    if not label:
        return None
    try:
        return str(uuid.UUID(label))
    except ValueError:
        return None
