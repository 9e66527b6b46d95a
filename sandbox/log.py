"""The engine's loggers, and where every log line of the project goes by default.

structlog (with the asyncio and rich it pulls in) costs ~100 ms to import; a one-shot
`vm-system run` should not pay that unless something is actually logged, so the engine's
loggers are lazy.

Used as a library, the project must never write to its host program's stdout, which is where
structlog prints until someone configures it. So unless the program configures structlog
itself (before or after importing us: its configuration wins), the project's loggers
(`sandbox`, `store.*`, `supervisor.*`) go through the standard `logging` module under those
names: the program's handlers decide, and with none configured Python's last-resort handler
prints warnings and errors to stderr. The CLI and the daemon configure structlog themselves
(supervisor.logs: stderr).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from typing import Any

_before_first_use: list[Callable[[], None]] = []


def before_first_log(hook: Callable[[], None]) -> None:
    """Run `hook` (say, configure structlog) just before the engine first logs, if it ever
    does: an application can route the engine's logs without paying for it up front."""
    _before_first_use.append(hook)


def route_to_stdlib_logging() -> None:
    """Send structlog's lines to the standard `logging` module, unless structlog is configured
    already (then nothing changes)."""
    import structlog

    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"]),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a program that configures structlog later must take over every logger.
        cache_logger_on_first_use=False,
    )


class _RouteAfterImport:
    """A meta-path finder that lets structlog import as usual, then routes it.

    The store's and the supervisor's modules bind structlog loggers when they are imported,
    maybe after this module, and log without asking us first: the routing has to happen the
    moment structlog exists, and importing it here up front would cost every `vm-system run`
    its ~100 ms."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name != "structlog":
            return None
        sys.meta_path.remove(self)  # once: the real finders answer from here on
        spec = importlib.util.find_spec(name)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_then_route(module: Any) -> None:
            exec_module(module)
            route_to_stdlib_logging()

        loader.exec_module = exec_then_route  # type: ignore[method-assign]
        return spec


if "structlog" in sys.modules:
    route_to_stdlib_logging()
else:
    sys.meta_path.insert(0, _RouteAfterImport())


class _LazyLogger:
    __slots__ = ("_name", "_logger")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            while _before_first_use:
                _before_first_use.pop(0)()
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attr)


def get_logger(name: str) -> Any:
    return _LazyLogger(name)
