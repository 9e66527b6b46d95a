"""Typed errors of the engine. Each carries an engine error kind and its subject (see
`vocabulary.errors`); the adapters map those to API codes."""

from __future__ import annotations

from vocabulary import ErrorKind, Subject


class SandboxError(Exception):
    kind: ErrorKind = ErrorKind.INTERNAL
    subject: Subject = Subject.SANDBOX


class EngineUnavailable(SandboxError):
    """The guest module cannot be found, patched or compiled."""


class SandboxClosed(SandboxError):
    """The sandbox was closed; it cannot evaluate any more."""

    kind = ErrorKind.CLOSED


class SandboxBusy(SandboxError):
    """Another evaluation is running in this sandbox."""

    kind = ErrorKind.BUSY


class ImageError(SandboxError):
    """An image is truncated, tampered with, or made for another guest or key."""

    kind = ErrorKind.INVALID
    subject = Subject.IMAGE


class GuestCorrupted(SandboxError):
    """The guest produced something it never can when intact; the instance is discarded."""
