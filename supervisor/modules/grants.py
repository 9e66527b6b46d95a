"""A session's grants: the host functions and the module loader its enabled modules give it.

A template enables modules and scopes each with the capability of its kind; a session takes
both from the settings it was spawned with (they are in the session's row, so a session
restored after a restart is given exactly what it had). Each module call is a host function of
the sandbox: counted against the execution's budgets, recorded as a `host_call` event, its time
on the wall clock. The guest half (`guest.js`) gives them Node's names, and `require` and
`import` reach them.

A module's failure is a `ModuleError`; it crosses as a HostError whose message is
`CODE\\x1fmessage`, which the guest half turns into an `Error` with that `code`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from sandbox import HostError, HostFunction, Sandbox
from supervisor.imports.loader import ImportLoader, Transform
from supervisor.imports.resolution import ImportRefused, Package, Resolver, ResolverSettings
from supervisor.imports.worktree_tree import WorktreeTree
from supervisor.modules import capabilities as caps
from supervisor.modules.commands import CommandPolicy, CommandResult, run_command, run_command_async
from supervisor.modules.database import SessionDatabase
from supervisor.modules.errors import ModuleError
from supervisor.modules.fetch import Fetcher, FetchResponse
from supervisor.modules.fs import ConfinedFs, FileStat

log = structlog.get_logger("supervisor.modules")

SEPARATOR = "\x1f"
_GUEST_JS = (Path(__file__).with_name("guest.js")).read_text(encoding="utf-8")

# Each module's host functions, by the name the guest half calls them (`host["fs.readFile"]`).
FUNCTIONS: dict[str, tuple[str, ...]] = {
    "fs": ("fs.readFile", "fs.writeFile", "fs.appendFile", "fs.readdir", "fs.stat", "fs.exists",
           "fs.mkdir", "fs.rm", "fs.rename"),
    "database": ("database.configure", "database.query", "database.exec", "database.close"),
    "exec": ("exec.run", "exec.spawn"),
    "fetch": ("fetch.request",),
}
# `require` of files and packages (every session has it, whatever its modules).
REQUIRE_FUNCTION = "modules.require"


def enabled_modules(names: Sequence[str]) -> tuple[str, ...]:
    """The names a session is given: those of the catalog, in a stable order. A name stored
    by an older version whose catalog listed it (`crypto`, ...) grants nothing, as it never did."""
    return tuple(kind for kind in caps.KINDS if kind in set(names))


def guest_source(modules: Sequence[str]) -> str:
    """The guest half, for a base image of a session with these modules."""
    return f"{_GUEST_JS}({json.dumps(list(enabled_modules(modules)))});"


def _not_granted(*_args: Any) -> None:
    raise HostError("this function is granted to sessions, not to their base image")


def placeholder_functions(modules: Sequence[str]) -> dict[str, HostFunction]:
    """Functions a base image exposes so that its guest half finds them; every session made
    from it is given its own in the same slots (`Sandbox.clone(functions=...)`)."""
    out = {name: HostFunction(_not_granted) for kind in enabled_modules(modules)
           for name in FUNCTIONS[kind]}
    out[REQUIRE_FUNCTION] = HostFunction(_not_granted)
    return out


def require_function(loader: ImportLoader) -> HostFunction:
    """The host half of the guest's `require` of files and packages, over `loader`."""
    def require(specifier: Any, referrer: Any) -> dict[str, Any]:
        try:
            return loader.require(specifier, referrer)
        except ImportRefused as exc:
            raise module_error(ModuleError(exc.code, exc.message)) from None
    return HostFunction(require)


def module_error(exc: ModuleError) -> HostError:
    return HostError(f"{exc.code}{SEPARATOR}{exc.message}")


def _bad_arg(name: str, what: str) -> ModuleError:
    return ModuleError("ERR_INVALID_ARG_TYPE", f'The "{name}" argument must be {what}')


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _bad_arg(name, "of type string")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise _bad_arg(name, "of type boolean")
    return value


def _payload(data: Any, encoding: Any) -> bytes:
    text = _text(data, "data")
    if encoding == "utf8":
        return text.encode("utf-8", "surrogatepass")
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ModuleError("ERR_INVALID_ARG_VALUE", "data is not valid base64") from None
    raise ModuleError("ERR_INVALID_ARG_VALUE", "encoding must be 'utf8' or 'base64'")


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except ModuleError as exc:
            raise module_error(exc) from None
    call.__name__ = fn.__name__
    return call


def _guarded_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    async def call(*args: Any) -> Any:
        try:
            return await fn(*args)
        except ModuleError as exc:
            raise module_error(exc) from None
    call.__name__ = fn.__name__
    return call


@dataclass(frozen=True)
class Grant:
    """One enabled capability, as the session was spawned with it."""

    id: str
    kind: str
    name: str
    config: Mapping[str, Any]


def grants_of(capabilities: Sequence[Mapping[str, Any]]) -> dict[str, Grant]:
    """The enabled capability of each kind (docs/api.md: at most one per kind)."""
    out: dict[str, Grant] = {}
    for cap in capabilities:
        if cap.get("enabled", True) and cap.get("kind") in caps.KINDS:
            kind = str(cap["kind"])
            out.setdefault(kind, Grant(str(cap.get("id", "")), kind, str(cap.get("name", "")),
                                       dict(cap.get("config") or {})))
    return out


class SessionGrants:
    """What one session's modules hold (its confined directory, its database connection, its
    fetch client), made on first use and released with the session."""

    def __init__(self, modules: Sequence[str], capabilities: Sequence[Mapping[str, Any]], *,
                 worktree: str, session_id: str | None, template_id: str | None,
                 data_dir: Path, resolver: Mapping[str, Any] | None = None,
                 packages: Mapping[str, Package] | None = None,
                 transform: Transform | None = None) -> None:
        self.modules = enabled_modules(modules)
        # What `import` and `require` reach: the worktree's files (under the template's
        # resolver settings) and the template's packages, read on demand.
        self._tree = WorktreeTree(worktree)
        self._imports = ImportLoader(
            Resolver(self._tree, packages=packages, settings=ResolverSettings.of(resolver),
                     modules=self.modules, typescript=transform is not None), transform)
        self._grants = grants_of(capabilities)
        self._worktree = worktree
        self._session_id = session_id
        self._template_id = template_id
        self._data_dir = data_dir
        self._sandbox: Sandbox | None = None
        self._fs: ConfinedFs | None = None
        self._db: SessionDatabase | None = None
        self._db_closed = False
        self._fetcher: Fetcher | None = None
        self._commands: CommandPolicy | None = None

    # ----- wiring -----------------------------------------------------------------------------

    def config(self, kind: str) -> dict[str, Any]:
        """The capability's config, completed with the defaults (a module enabled without one
        runs with these)."""
        grant = self._grants.get(kind)
        return caps.CONFIGS[kind].model_validate(dict(grant.config) if grant else {}).model_dump()

    def attach(self, sandbox: Sandbox) -> None:
        """The sandbox the functions run in: its deadline and stop bound blocking calls."""
        self._sandbox = sandbox

    def loader(self) -> ImportLoader:
        return self._imports

    def functions(self) -> dict[str, HostFunction]:
        table: dict[str, Callable[..., Any]] = {}
        if "fs" in self.modules:
            table.update({"fs.readFile": self._fs_read, "fs.writeFile": self._fs_write,
                          "fs.appendFile": self._fs_append, "fs.readdir": self._fs_readdir,
                          "fs.stat": self._fs_stat, "fs.exists": self._fs_exists,
                          "fs.mkdir": self._fs_mkdir, "fs.rm": self._fs_rm,
                          "fs.rename": self._fs_rename})
        if "database" in self.modules:
            table.update({"database.configure": self._db_configure, "database.query": self._db_query,
                          "database.exec": self._db_exec, "database.close": self._db_close})
        out = {name: HostFunction(_guarded(fn)) for name, fn in table.items()}
        out[REQUIRE_FUNCTION] = require_function(self._imports)
        if "exec" in self.modules:
            # The daemon records every run: the command and how it ended (never its arguments).
            out["exec.run"] = HostFunction(_guarded(self._exec_run), detail=_command_detail)
            out["exec.spawn"] = HostFunction(_guarded_async(self._exec_spawn), detail=_command_detail)
        if "fetch" in self.modules:
            out["fetch.request"] = HostFunction(_guarded_async(self._fetch_request))
        return out

    def begin_execution(self) -> None:
        """Budgets that are per execution start again."""
        if self._fs is not None:
            # A recursive rm gives up once the execution is cancelled (its wall deadline is
            # not known yet here; the sandbox's stop check is read when the rm runs).
            self._fs.begin_execution(should_stop=self._sandbox.stopping if self._sandbox else None)
        if self._fetcher is not None:
            self._fetcher.begin_execution()

    def close(self) -> None:
        """Release what the modules hold (the session stops being live here)."""
        self._tree.close()
        if self._fs is not None:
            self._fs.close()
            self._fs = None
        if self._db is not None:
            self._db.close()
            self._db = None

    def discard(self) -> None:
        """The session is closed: its private database goes with it."""
        self.close()
        path = self._private_database()
        if path is not None:
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    os.unlink(f"{path}{suffix}")
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("session_database_not_removed", error=exc.strerror)

    def _deadline(self) -> tuple[float, Callable[[], bool]]:
        sb = self._sandbox
        if sb is None:
            raise ModuleError("ERR_NOT_READY", "the session is not running")
        return sb.wall_deadline, sb.stopping

    # ----- require ----------------------------------------------------------------------------

    # ----- fs ---------------------------------------------------------------------------------

    def _confined(self) -> ConfinedFs:
        if self._fs is None:
            config = self.config("fs")
            self._fs = ConfinedFs(self._worktree, config["root"], write=config["write"],
                                  max_file_bytes=config["max_file_bytes"],
                                  max_total_write_bytes=config["max_total_write_bytes"])
        return self._fs

    def _fs_read(self, path: Any, encoding: Any) -> str:
        data = self._confined().read_file(_text(path, "path"))
        if encoding == "base64":
            return base64.b64encode(data).decode("ascii")
        return data.decode("utf-8", "replace")

    def _fs_write(self, path: Any, data: Any, encoding: Any) -> None:
        self._confined().write_file(_text(path, "path"), _payload(data, encoding))

    def _fs_append(self, path: Any, data: Any, encoding: Any) -> None:
        self._confined().append_file(_text(path, "path"), _payload(data, encoding))

    def _fs_readdir(self, path: Any) -> list[str]:
        return self._confined().readdir(_text(path, "path"))

    def _fs_stat(self, path: Any, follow: Any) -> dict[str, Any]:
        # statSync follows a last symlink (within the root), as Node's does; lstatSync not.
        return _stat_json(self._confined().stat(_text(path, "path"),
                                                follow_symlinks=_flag(follow, "follow")))

    def _fs_exists(self, path: Any) -> bool:
        return isinstance(path, str) and self._confined().exists(path)

    def _fs_mkdir(self, path: Any, recursive: Any) -> None:
        self._confined().mkdir(_text(path, "path"), recursive=_flag(recursive, "recursive"))

    def _fs_rm(self, path: Any, recursive: Any, force: Any) -> None:
        self._confined().rm(_text(path, "path"), recursive=_flag(recursive, "recursive"),
                            force=_flag(force, "force"))

    def _fs_rename(self, src: Any, dst: Any) -> None:
        self._confined().rename(_text(src, "oldPath"), _text(dst, "newPath"))

    # ----- database ---------------------------------------------------------------------------

    def _private_database(self) -> Path | None:
        """The file of a database that belongs to this session alone, if it has one."""
        config = self.config("database") if "database" in self.modules else None
        if config is None or config["file"] is not None or config["shared"] or not self._session_id:
            return None
        return self._data_dir / "sessions" / f"{self._session_id}.sqlite"

    def _database_path(self) -> str:
        config = self.config("database")
        if config["file"] is not None:
            return _worktree_database(self._worktree, config["file"])
        if config["shared"]:
            grant = self._grants["database"]
            folder = self._data_dir / "templates" / str(self._template_id)
            name = f"{grant.id}.sqlite"
        else:
            private = self._private_database()
            if private is None:
                raise ModuleError("ERR_DATABASE_UNAVAILABLE",
                                  "database: a one-shot run has no database")
            folder, name = private.parent, private.name
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return str(folder / name)

    def _database(self) -> SessionDatabase:
        if self._db_closed:
            raise ModuleError("ERR_DATABASE_CLOSED", "database: closed; call configure() to open it again")
        if self._db is None:
            config = self.config("database")
            self._db = SessionDatabase(self._database_path(), max_rows=config["max_rows"],
                                       max_bytes=config["max_bytes"])
        return self._db

    def _db_configure(self, driver: Any, dsn: Any) -> None:
        driver, dsn = _text(driver, "driver"), _text(dsn, "dsn")
        if driver not in ("sqlite3", "sqlite"):
            raise ModuleError("ERR_DATABASE_DRIVER",
                              f"database: driver '{driver}' is not available (only sqlite3)")
        grant = self._grants.get("database")
        allowed = {"", ":session:"} | ({grant.name} if grant else set())
        file = self.config("database")["file"]
        if file is not None:
            allowed |= {file, f"./{file}"}
        if dsn not in allowed:
            raise ModuleError("ERR_DATABASE_DSN", f"database: dsn '{dsn}' is not allowed by this "
                              "template (use '' for the session's database)")
        self._db_closed = False
        self._database()

    def _db_query(self, sql: Any, params: Any) -> list[dict[str, Any]]:
        deadline, stop = self._deadline()
        return self._database().query(_text(sql, "sql"), _params(params), deadline=deadline,
                                      should_stop=stop)

    def _db_exec(self, sql: Any, params: Any) -> dict[str, Any]:
        deadline, stop = self._deadline()
        return self._database().exec(_text(sql, "sql"), _params(params), deadline=deadline,
                                     should_stop=stop)

    def _db_close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        self._db_closed = True

    # ----- exec -------------------------------------------------------------------------------

    def _policy(self) -> CommandPolicy:
        if self._commands is None:
            self._commands = caps.command_policy(self.config("exec"))
        return self._commands

    def _exec_run(self, cmd: Any, args: Any) -> dict[str, Any]:
        deadline, stop = self._deadline()
        result = run_command(self._policy(), _text(cmd, "cmd"), _argv(args), self._worktree,
                             deadline=deadline, should_stop=stop)
        return self._command_output(cmd, result)

    async def _exec_spawn(self, cmd: Any, args: Any, data: Any = None, encoding: Any = None) -> dict[str, Any]:
        deadline, stop = self._deadline()
        stdin = None if data is None else _payload(data, encoding)
        result = await run_command_async(self._policy(), _text(cmd, "cmd"), _argv(args),
                                         self._worktree, deadline=deadline, should_stop=stop,
                                         stdin=stdin)
        return self._command_output(cmd, result)

    def _command_output(self, cmd: str, result: CommandResult) -> dict[str, Any]:
        """What a command printed is the script's output too: it counts against max_output_kb."""
        if self._sandbox is not None:
            self._sandbox.count_output(len(result.stdout) + len(result.stderr))
        return _command_json(cmd, result)

    # ----- fetch ------------------------------------------------------------------------------

    def _client(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = Fetcher(caps.fetch_policy(self.config("fetch")))
        return self._fetcher

    async def _fetch_request(self, url: Any, method: Any, headers: Any, body: Any) -> dict[str, Any]:
        deadline, _stop = self._deadline()
        pairs = _header_pairs(headers)
        data = None if body is None else _payload(body, "base64")
        response = await self._client().fetch(_text(url, "url"), method=_text(method, "method"),
                                              headers=pairs, body=data, deadline=deadline)
        return _response_json(response)


def _params(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _bad_arg("args", "an array")
    return value


def _argv(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise _bad_arg("args", "an array of strings")
    return value


def _header_pairs(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise _bad_arg("headers", "an array of [name, value] pairs")
    pairs = []
    for pair in value:
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(p, str) for p in pair)):
            raise _bad_arg("headers", "an array of [name, value] pairs of strings")
        pairs.append((pair[0], pair[1]))
    return pairs


def _stat_json(info: FileStat) -> dict[str, Any]:
    kind = "file" if info.is_file else "directory" if info.is_directory else "other"
    return {"size": info.size, "mode": info.mode, "mtimeMs": info.mtime_ms,
            "atimeMs": info.atime_ms, "ctimeMs": info.ctime_ms, "kind": kind,
            "isSymbolicLink": info.is_symbolic_link}


def _text_of(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _command_json(cmd: str, result: CommandResult) -> dict[str, Any]:
    return {"command": cmd, "code": result.exit_code, "signal": result.signal, "stdout": _text_of(result.stdout),
            "stderr": _text_of(result.stderr), "output": _text_of(result.output),
            "timedOut": result.timed_out, "truncated": result.truncated}


def _command_detail(result: dict[str, Any]) -> dict[str, Any]:
    return {"command": result["command"], "exit": result["code"], "signal": result["signal"]}


def _response_json(response: FetchResponse) -> dict[str, Any]:
    return {"status": response.status, "statusText": response.status_text,
            "headers": [list(pair) for pair in response.headers], "url": response.url,
            "redirected": response.redirected,
            "body": base64.b64encode(response.body).decode("ascii")}


def _worktree_database(worktree: str, relative: str) -> str:
    """The absolute path of a database file the capability names inside the worktree.

    SQLite opens files by name (and makes `-journal`/`-wal` files beside them), so each name
    is checked not to be, or pass through, a symlink, nor to be a hardlink: one that led to
    the daemon's own database would hand it to the script."""
    root = os.path.realpath(worktree)
    path = os.path.join(root, relative)
    parts = Path(relative).parts
    for depth in range(1, len(parts) + 1):
        _refuse_link(os.path.join(root, *parts[:depth]), relative, last=depth == len(parts))
    for suffix in ("-journal", "-wal", "-shm"):
        _refuse_link(path + suffix, relative + suffix, last=True)
    if os.path.commonpath([root, os.path.realpath(path)]) != root:
        raise ModuleError("EACCES", f"database: '{relative}' leads out of the worktree")
    return path


def _refuse_link(path: str, shown: str, *, last: bool) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise ModuleError("EACCES", f"database: '{shown}' is or passes through a symlink")
    if last and (not stat.S_ISREG(info.st_mode) or info.st_nlink > 1):
        raise ModuleError("EACCES", f"database: '{shown}' is not a plain file")
    if not last and not stat.S_ISDIR(info.st_mode):
        raise ModuleError("ENOTDIR", f"database: '{shown}' is not inside a directory")
