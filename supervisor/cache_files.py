"""Files of the daemon's caches (the transpiler's tarballs, stripped TypeScript): written whole
or not at all (a temporary file beside it, renamed over it), and a write that fails only costs
a miss next time, so it is logged, never raised."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import structlog

log = structlog.get_logger("supervisor.cache_files")


def keep(path: Path, data: bytes) -> bool:
    """Write `data` as `path` (its directory made 0700 if missing); False if it could not be."""
    temp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
        return True
    except OSError as exc:
        log.warning("cache_write_failed", path=str(path), error=str(exc))
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        return False
