"""What opening a supervisor takes, whichever it is: where the database and its key live, what
a start-up settles first, and which share of the sessions a worker restores.

`Supervisor.open` and `ShardedSupervisor.open` take the same options (`OpenOptions`), turned
into a `BootConfig` here, once; both open the database with `open_database`. The factory that
chooses between them is `supervisor.opening.open_supervisor`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypedDict, Unpack

import structlog

from sandbox import installation_key
from store import Store
from supervisor.settings import Ceilings

log = structlog.get_logger("supervisor")

DEFAULT_IMAGE_INTERVAL_S = 0.2


class OpenOptions(TypedDict, total=False):
    """What every supervisor is opened with, besides its database."""

    library_dir: str | Path | None  # where template libraries (NAME.js) live
    ceilings: Ceilings | None  # the daemon's limits ceilings (defaults: `Ceilings()`)
    image_key: bytes | None  # signs session images; by default the key beside the database
    run_root: str | Path | None  # one-shot runs' paths are relative to it (default: the cwd)
    image_interval: float  # seconds between background image writes
    npm_registry: str | None  # the package store's registry (default: $VM_SYSTEM_NPM_REGISTRY, npm's)


@dataclass(frozen=True)
class BootConfig:
    db_path: Path
    library_dir: Path | None
    ceilings: Ceilings
    image_key: bytes | None  # None: read (or created) at `key_path(db_path)`
    run_root: Path
    image_interval: float
    npm_registry: str | None = None

    @classmethod
    def of(cls, db_path: str | Path, **options: Unpack[OpenOptions]) -> BootConfig:
        # Refused as a misspelt keyword argument is: an option must never be ignored.
        unknown = sorted(options.keys() - OpenOptions.__annotations__.keys())
        if unknown:
            raise TypeError(f"unexpected option(s) {', '.join(unknown)}")
        library_dir, run_root = options.get("library_dir"), options.get("run_root")
        return cls(Path(db_path), Path(library_dir) if library_dir else None,
                   options.get("ceilings") or Ceilings(), options.get("image_key"),
                   Path(run_root) if run_root else Path.cwd(),
                   options.get("image_interval", DEFAULT_IMAGE_INTERVAL_S), options.get("npm_registry"))

    def resolved(self) -> BootConfig:
        """The same, every path absolute: what a worker process is handed."""
        return replace(self, db_path=self.db_path.resolve(),
                       library_dir=self.library_dir.resolve() if self.library_dir else None,
                       run_root=self.run_root.resolve())


@dataclass(frozen=True)
class Shard:
    """Worker `index` of `count`: it restores the sessions whose id falls in its share."""

    index: int
    count: int

    def owns(self, session_id: str) -> bool:
        return int(session_id.replace("-", ""), 16) % self.count == self.index


def default_db_path() -> Path:
    import platformdirs

    return Path(os.environ.get("VM_SYSTEM_DB") or Path(platformdirs.user_data_dir("vm-system")) / "vm-system.db")


def key_path(db_path: Path) -> Path:
    """`<db>.key`, beside the database (created 0600): the database and its key travel together."""
    return db_path.with_name(db_path.name + ".key")


def data_dir(db_path: Path) -> Path:
    """`<db>.data/`, beside the database: the files sessions' modules keep (their SQLite
    databases), which travel with the database as its key does."""
    return db_path.with_name(db_path.name + ".data")


def open_database(config: BootConfig) -> tuple[Store, bytes]:
    """The store, and the key session images are signed with (`config.image_key`, or the
    one at `key_path`)."""
    store = Store.open(config.db_path)
    try:
        key = config.image_key if config.image_key is not None else installation_key(key_path(config.db_path))
    except BaseException:
        store.close()
        raise
    return store, key


def reconcile(store: Store) -> None:
    """Settle what a dead daemon left (no `running` row, no `starting` session)."""
    report = store.reconcile()
    if report.changed:
        log.warning("reconciled", crashed_executions=len(report.crashed_executions),
                    crashed_sessions=len(report.crashed_sessions))

