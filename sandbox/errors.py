"""Typed errors of the engine. Each carries the API error code it maps to."""

from __future__ import annotations


class SandboxError(Exception):
    code = "INTERNAL"


class EngineUnavailable(SandboxError):
    """The guest module cannot be found, patched or compiled."""


class SandboxClosed(SandboxError):
    """The sandbox was closed; it cannot evaluate any more."""

    code = "SESSION_NOT_READY"


class SandboxBusy(SandboxError):
    """Another evaluation is running in this sandbox."""

    code = "SESSION_BUSY"


class ImageError(SandboxError):
    """An image is truncated, tampered with, or made for another guest or key."""

    code = "IMAGE_INVALID"


class GuestCorrupted(SandboxError):
    """The guest produced something it never can when intact; the instance is discarded."""
