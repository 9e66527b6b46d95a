"""The engine's loggers, imported lazily.

structlog (with the asyncio it pulls in) costs ~40 ms to import; a one-shot `vm-system run`
should not pay that unless something is actually logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_before_first_use: list[Callable[[], None]] = []


def before_first_log(hook: Callable[[], None]) -> None:
    """Run `hook` (say, configure structlog) just before the engine first logs, if it ever
    does: an application can route the engine's logs without paying for it up front."""
    _before_first_use.append(hook)


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
