"""The memory this process holds, as the runtime summary reports it."""

from __future__ import annotations

import os


def rss_bytes() -> int | None:
    """The resident set size of this process, or None where /proc cannot tell (not Linux)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
