"""The engines the workloads run on: vm-system, and the alternatives that are installed."""

from __future__ import annotations

from benchmarks.engines.base import Availability, Engine
from benchmarks.engines.native import NAME as NATIVE
from benchmarks.engines.native import NativeQuickJS
from benchmarks.engines.node import NodeJs
from benchmarks.engines.quickjs_rs import QuickJsRs
from benchmarks.engines.vm import LIMITS, VmSystemEngine
from benchmarks.engines.wasmjs import WasmJs

VM = "vm-system"


def alternatives() -> list[Engine]:
    """The engines vm-system is compared with; native QuickJS first (the reference)."""
    return [NativeQuickJS(), QuickJsRs(), WasmJs(), NodeJs()]


def all_engines() -> list[Engine]:
    return [VmSystemEngine(), *alternatives()]


__all__ = ["Availability", "Engine", "LIMITS", "NATIVE", "VM", "NativeQuickJS", "NodeJs",
           "QuickJsRs", "VmSystemEngine", "WasmJs", "all_engines", "alternatives"]
