"""The limits of an evaluation: their names, what a new template gets, and the most a daemon
allows unless it is told otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

LimitName = Literal["cpu_ms", "wall_ms", "mem_mb", "max_events", "max_output_kb", "max_host_calls",
                    "max_host_in_kb", "max_host_out_kb"]
LIMIT_NAMES: tuple[LimitName, ...] = get_args(LimitName)

# Read-only, so no caller can change the defaults of every later template.
DEFAULT_LIMITS: Mapping[LimitName, int] = MappingProxyType({
    "cpu_ms": 2000,
    "wall_ms": 5000,
    "mem_mb": 128,
    "max_events": 50000,
    "max_output_kb": 256,
    "max_host_calls": 10_000,
    "max_host_in_kb": 16 * 1024,
    "max_host_out_kb": 16 * 1024,
})
DEFAULT_CEILINGS: Mapping[LimitName, int] = MappingProxyType({
    "cpu_ms": 60_000,
    "wall_ms": 300_000,
    "mem_mb": 1024,
    "max_events": 1_000_000,
    "max_output_kb": 64 * 1024,
    "max_host_calls": 1_000_000,
    "max_host_in_kb": 256 * 1024,
    "max_host_out_kb": 256 * 1024,
})
