"""Template settings: validation of patches, and the limits a session runs with.

Settings arrive from clients, so they are checked with pydantic models that refuse unknown keys
and loose types (`true` is not a number, `"5"` is not an integer). A limit of 0 means "the
daemon's ceiling", never "unlimited"; a limit above the ceiling is refused.
"""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr

from sandbox import Limits
from supervisor.errors import InvalidRequest, ValidationError
from vocabulary import DEFAULT_CEILINGS, LIMIT_NAMES


class Ceilings(BaseModel):
    """The most any template may ask for in this daemon."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_ms: StrictInt = DEFAULT_CEILINGS["cpu_ms"]
    wall_ms: StrictInt = DEFAULT_CEILINGS["wall_ms"]
    mem_mb: StrictInt = DEFAULT_CEILINGS["mem_mb"]
    max_events: StrictInt = DEFAULT_CEILINGS["max_events"]
    max_output_kb: StrictInt = DEFAULT_CEILINGS["max_output_kb"]
    max_host_calls: StrictInt = DEFAULT_CEILINGS["max_host_calls"]
    max_host_in_kb: StrictInt = DEFAULT_CEILINGS["max_host_in_kb"]
    max_host_out_kb: StrictInt = DEFAULT_CEILINGS["max_host_out_kb"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LimitsPatch(_Strict):
    cpu_ms: StrictInt | None = None
    wall_ms: StrictInt | None = None
    mem_mb: StrictInt | None = None
    max_events: StrictInt | None = None
    max_output_kb: StrictInt | None = None
    max_host_calls: StrictInt | None = None
    max_host_in_kb: StrictInt | None = None
    max_host_out_kb: StrictInt | None = None


class RuntimePatch(_Strict):
    esm: StrictBool | None = None
    strict: StrictBool | None = None
    console: StrictBool | None = None


class ResolverPatch(_Strict):
    roots: list[StrictStr] | None = None
    extensions: list[StrictStr] | None = None
    allow_absolute_repo_imports: StrictBool | None = None


class SettingsPatch(_Strict):
    limits: LimitsPatch | None = None
    runtime: RuntimePatch | None = None
    resolver: ResolverPatch | None = None


def _details(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    return [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]


def validate_patch(patch: Any, ceilings: Ceilings) -> dict[str, dict[str, Any]]:
    """The sections and keys a patch sets, validated; raises ValidationError."""
    try:
        model = SettingsPatch.model_validate(patch)
    except pydantic.ValidationError as exc:
        # Unknown keys and wrong types are a malformed request; bad values are checked below.
        raise InvalidRequest("invalid settings: " + "; ".join(
            f"{d['field']}: {d['problem']}" for d in _details(exc)), errors=_details(exc)) from None
    out: dict[str, dict[str, Any]] = {}
    for section in ("limits", "runtime", "resolver"):
        value = getattr(model, section)
        if value is not None:
            given = value.model_dump(exclude_none=True)
            if given:
                out[section] = given
    for name, value in out.get("limits", {}).items():
        ceiling = getattr(ceilings, name)
        if value < 0 or value > ceiling:
            raise ValidationError(
                f"limits.{name} must be between 0 (the daemon's ceiling) and {ceiling}",
                field=f"limits.{name}", value=value, ceiling=ceiling)
        if name == "mem_mb" and 0 < value < Limits.MIN_MEM_MB:
            raise ValidationError(f"limits.mem_mb must be at least {Limits.MIN_MEM_MB}",
                                  field="limits.mem_mb", value=value)
    resolver = out.get("resolver", {})
    for ext in resolver.get("extensions", []):
        if not ext.startswith(".") or "/" in ext:
            raise ValidationError("resolver.extensions must look like '.js'", field="resolver.extensions",
                                  value=ext)
    for root in resolver.get("roots", []):
        if root.startswith("/") or ".." in root.split("/"):
            raise ValidationError("resolver.roots must be relative and inside the worktree",
                                  field="resolver.roots", value=root)
    return out


def effective_limits(limits: dict[str, Any], ceilings: Ceilings) -> Limits:
    """The sandbox limits a session runs with: 0 or a missing key means the ceiling."""
    values = {}
    for name in LIMIT_NAMES:
        value = limits.get(name) or 0
        ceiling = getattr(ceilings, name)
        values[name] = ceiling if value <= 0 else min(int(value), ceiling)
    return Limits(**values)
