"""What each capability's `config` may say, with its defaults and ceilings (docs/api.md,
"Modules").

A capability scopes the module of its kind. Its config is checked here when it is added, and
refused, naming the field, if it is not one this daemon can honour: a capability that was
stored must be one a session can be given. The checked, completed config is what is stored, so
that the defaults a session runs with are the ones that were in force when it was granted
(exec's allowlist, for one, is resolved to absolute paths once, here).
"""

from __future__ import annotations

import re
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator

from supervisor.errors import CapabilityInvalid, InvalidPath
from supervisor.modules import commands, fetch
from supervisor.worktree import check_relative

KiB, MiB = 1024, 1024 * 1024

# The modules a template may enable, each scoped by the capability of the same kind.
KINDS = ("fs", "database", "exec", "fetch")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _bounded(default: int, ceiling: int, floor: int = 1) -> Any:
    return Field(default=default, ge=floor, le=ceiling)


def _relative(value: str) -> str:
    try:
        return check_relative(value)
    except InvalidPath as exc:  # pydantic names the field of a ValueError, not of our errors
        raise ValueError(exc.message) from None


def _relative_or_root(value: str) -> str:
    return "." if value in (".", "./", "") else _relative(value)


class FsConfig(_Config):
    # A directory of the worktree, relative to it; the script's paths are relative to it.
    root: StrictStr = "."
    write: StrictBool = False
    max_file_bytes: StrictInt = _bounded(8 * MiB, 256 * MiB)
    max_total_write_bytes: StrictInt = _bounded(64 * MiB, 1024 * MiB, floor=0)

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        return _relative_or_root(value)


class DatabaseConfig(_Config):
    # None: a private file in the daemon's data directory. A name: that file inside the worktree.
    file: StrictStr | None = None
    # Shared by every session of the template (in the data directory), and kept when one closes.
    shared: StrictBool = False
    max_rows: StrictInt = _bounded(10_000, 1_000_000)
    max_bytes: StrictInt = _bounded(64 * MiB, 4096 * MiB, floor=64 * KiB)

    @field_validator("file")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        return None if value is None else _relative(value)

    @model_validator(mode="after")
    def _where(self) -> DatabaseConfig:
        if self.file is not None and self.shared:
            raise ValueError("a database in the worktree is the worktree's: 'shared' applies "
                             "only to a database in the data directory")
        return self


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ExecConfig(_Config):
    allow: list[StrictStr] = Field(default_factory=list, max_length=64)
    # Filled when the capability is added: each allowed name's absolute path.
    resolved: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    env: dict[StrictStr, StrictStr] = Field(default_factory=dict, max_length=256)
    timeout_ms: StrictInt = _bounded(10_000, 300_000)
    max_output_bytes: StrictInt = _bounded(1 * MiB, 64 * MiB)
    cpu_seconds: StrictInt = _bounded(10, 300)
    memory_mb: StrictInt = _bounded(512, 8192, floor=16)
    max_file_bytes: StrictInt = _bounded(64 * MiB, 4096 * MiB, floor=0)
    max_open_files: StrictInt = _bounded(64, 1024, floor=8)
    max_processes: StrictInt = _bounded(32, 1024)
    network: StrictBool = False

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _ENV_NAME.match(name):
                raise ValueError(f"environment variable name {name!r} is not a valid name")
            if "\0" in text:
                raise ValueError(f"environment variable {name} must not contain NUL")
        return value


class FetchOrigin(_Config):
    origin: StrictStr
    # Sent with every request to this origin; the script never sees them.
    headers: dict[StrictStr, StrictStr] = Field(default_factory=dict, max_length=32)


class FetchConfig(_Config):
    # Each an origin ("https://api.example.com") or {"origin", "headers"}.
    origins: list[FetchOrigin] = Field(default_factory=list, max_length=256)
    max_response_bytes: StrictInt = _bounded(8 * MiB, 64 * MiB)
    max_request_bytes: StrictInt = _bounded(1 * MiB, 64 * MiB, floor=0)
    timeout_ms: StrictInt = _bounded(10_000, 300_000)
    max_requests: StrictInt = _bounded(100, 100_000)
    max_redirects: StrictInt = _bounded(5, 20, floor=0)


    @field_validator("origins", mode="before")
    @classmethod
    def _plain_origins(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"origin": o} if isinstance(o, str) else o for o in value]
        return value


CONFIGS: dict[str, type[_Config]] = {"fs": FsConfig, "database": DatabaseConfig,
                                      "exec": ExecConfig, "fetch": FetchConfig}

REDACTED = "<redacted>"


def _problems(exc: pydantic.ValidationError, kind: str) -> tuple[str, list[dict[str, Any]]]:
    found = [{"field": ".".join(["config", *(str(p) for p in e["loc"])]), "problem": e["msg"]}
             for e in exc.errors()]
    text = "; ".join(f"{d['field']}: {d['problem']}" for d in found)
    return f"invalid {kind} capability: {text}", found


def check_config(kind: str, config: Any) -> dict[str, Any]:
    """The completed config of a capability of `kind`, or CapabilityInvalid naming the field."""
    if kind not in CONFIGS:
        raise CapabilityInvalid(f"capability kind must be one of {', '.join(KINDS)}", field="kind",
                                kind=kind)
    try:
        model = CONFIGS[kind].model_validate(config or {})
    except pydantic.ValidationError as exc:
        message, found = _problems(exc, kind)
        raise CapabilityInvalid(message, field=found[0]["field"], errors=found) from None
    if isinstance(model, ExecConfig):
        model = _resolve_commands(model)
    if isinstance(model, FetchConfig):
        _check_origins(model)
    return model.model_dump()


def _resolve_commands(model: ExecConfig) -> ExecConfig:
    try:
        resolved = commands.resolve_allowlist(list(model.allow))
    except ValueError as exc:
        raise CapabilityInvalid(f"invalid exec capability: config.allow: {exc}",
                                field="config.allow") from None
    model = model.model_copy(update={"resolved": resolved})
    try:  # the policy's own checks (loader variables in env, the bounds it can honour)
        command_policy(model.model_dump())
    except ValueError as exc:
        raise CapabilityInvalid(f"invalid exec capability: {exc}", field="config") from None
    return model


def command_policy(config: dict[str, Any]) -> commands.CommandPolicy:
    """An exec capability's completed config as the policy each command runs under."""
    return commands.CommandPolicy(
        allow=dict(config["resolved"]), env=dict(config["env"]), timeout_ms=config["timeout_ms"],
        max_output_bytes=config["max_output_bytes"], cpu_seconds=config["cpu_seconds"],
        memory_bytes=config["memory_mb"] * MiB, max_file_bytes=config["max_file_bytes"],
        max_open_files=config["max_open_files"], max_processes=config["max_processes"],
        network=config["network"])


def _check_origins(model: FetchConfig) -> None:
    for index, entry in enumerate(model.origins):
        try:
            fetch.parse_origin(entry.origin, entry.headers)
        except ValueError as exc:
            raise CapabilityInvalid(f"invalid fetch capability: config.origins.{index}: {exc}",
                                    field=f"config.origins.{index}") from None
    fetch_policy(model.model_dump())  # the same bounds: a stored config always makes a policy


def fetch_policy(config: dict[str, Any]) -> fetch.FetchPolicy:
    """A fetch capability's completed config as the policy its session's fetches run under."""
    return fetch.FetchPolicy(
        origins=tuple(fetch.parse_origin(o["origin"], o["headers"]) for o in config["origins"]),
        max_response_bytes=config["max_response_bytes"], timeout_ms=config["timeout_ms"],
        max_requests=config["max_requests"], max_redirects=config["max_redirects"],
        max_request_bytes=config["max_request_bytes"])


def redacted(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config as clients are shown it: the secret headers of fetch origins hidden."""
    if kind != "fetch" or not isinstance(config.get("origins"), list):
        return config
    origins = [{**o, "headers": dict.fromkeys(o.get("headers") or {}, REDACTED)}
               for o in config["origins"] if isinstance(o, dict)]
    return {**config, "origins": origins}

