"""Native QuickJS (PyPI `quickjs`, a C extension): the reference every ratio is taken against.

It has no console; a Python callback stands in for vm-system's host function.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from benchmarks.engines.base import Driver, DriverEngine, EvalDriver
from benchmarks.workloads import console_shim

NAME = "native QuickJS"


class _Context:
    def __init__(self) -> None:
        import quickjs

        self.js = quickjs.Context()
        self.lines: list[str] = []
        self.js.add_callable("__log", self.lines.append)
        self.js.eval(console_shim("__log"))


class _NativeDriver(EvalDriver):
    def open(self) -> _Context:
        return _Context()

    def plain(self, value: Any) -> Any:
        return _plain(value)


def _plain(value: Any) -> Any:
    # Objects come back as quickjs.Object; the workloads answer with numbers and strings.
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"unexpected": type(value).__name__}


class NativeQuickJS(DriverEngine):
    name = NAME
    distribution = "quickjs"
    module = "quickjs"
    absent_note = "PyPI `quickjs` is not installed (pip install 'vm-system[bench]')"

    def driver(self, stack: ExitStack) -> Driver:
        return _NativeDriver()
