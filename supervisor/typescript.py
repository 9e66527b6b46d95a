"""TypeScript: a `.ts` / `.mts` / `.cts` file's types stripped before it runs.

The stripping is done by a pinned transpiler taken from the npm registry (`TRANSPILER`, with
the exact packages its transform needs and their integrity in `TRANSPILER_LOCK`), and the
transpiler itself runs **inside a sandbox**: a TypeScript file is hostile input to a parser of
some 700 KB of JavaScript, and a parser bug must not be a host risk. A sandbox with the
transpiler loaded is built once per process (~0.25 s) and kept as a base; every file is
stripped in a clone of it, under its own limits, so nothing one file did is seen by the next.

Sucrase's TypeScript transform keeps every line where it was (it removes types and writes the
few constructs it rewrites, `enum` and parameter properties, on the same lines), so an error
in the running code points at the `.ts` file's own line, with no source map.

The output is cached by content (the transpiler's id and the source's sha256): in memory for
the process, and on disk under the daemon's data directory when one is given, so a file is
transpiled once however many sessions run it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import structlog

from sandbox import Limits, Sandbox
from supervisor.base_images import sandbox_with_packages
from supervisor.cache_files import keep
from supervisor.imports.resolution import ImportRefused, Package
from supervisor.packages.locked import LockedPackage, load_locked
from supervisor.packages.registry import RegistryClient

log = structlog.get_logger("supervisor.typescript")

TRANSPILER = "sucrase@3.35.1"


# What sucrase's `transform` requires, each exactly, with the registry's sha512: a registry
# that served anything else for these names would be refused before a byte is unpacked.
TRANSPILER_LOCK: tuple[LockedPackage, ...] = (
    LockedPackage("sucrase", "3.35.1", "sha512-DhuTmvZWux4H1UOnWMB3sk0sbaCVOoQZjv8u1rDoTV0HTdGem9hkAZt"
                  "l4JZy8P2z4Bg0nT+YMeOFyVr4zcG5Tw=="),
    LockedPackage("ts-interface-checker", "0.1.13", "sha512-Y/arvbn+rrz3JCKl9C4kVNfTfSm2/mEp5FSz5Es"
                  "ZSANGPSlQrpRI5M4PKF+mJnE52jOO90PnPSc3Ur3bTQw0gA=="),
    LockedPackage("lines-and-columns", "1.2.4", "sha512-7ylylesZQ/PV29jhEDl3Ufjo6ZX7gCqJr5F7PKrqc93v"
                  "7fzSymt1BpwEU8nAUXs8qzzvqhbjhK5QZg6Mt/HkBg=="),
    LockedPackage("@jridgewell/gen-mapping", "0.3.13", "sha512-2kkt/7niJ6MgEPxF0bYdQ6etZaA+fQvDcLKc"
                  "khy1yIQOzaoKjBBjSj63/aLVjYE3qhRt5dvM+uUyfCg6UKCBbA=="),
    LockedPackage("@jridgewell/trace-mapping", "0.3.31", "sha512-zzNR+SdQSDJzc8joaeP8QQoCQr8NuYx2dII"
                  "ytl1QeBEZHJ9uW6hebsrYgbz8hJwUQao3TWCMtmfV8Nu1twOLAw=="),
    LockedPackage("@jridgewell/sourcemap-codec", "1.6.0", "sha512-T7jf+5zgsZHwNJ4lvQ7/aezbyk0nNX+zJV"
                  "WpmHA7VYsEx7a7qr5Rg5IbtJFqkgze5Y2sruq1RUY8Q837Od7iFw=="),
    LockedPackage("@jridgewell/resolve-uri", "3.1.3", "sha512-lhTtjtoEArWBjismtfS761S9Hlyn+nIZqOZVYo"
                  "Z1Xn82PMNMVnk+jj/NhC4fAXGTs7ydONcJiR5vyQBTMDu27g=="),
)

TYPESCRIPT_SUFFIXES = (".ts", ".mts", ".cts")
# The stripped text comes back as the call's JSON value, which the engine caps at 1 MiB.
MAX_SOURCE_CHARS = 512 * 1024
STRIP_LIMITS = Limits(cpu_ms=10_000, wall_ms=20_000, mem_mb=256)
_MEMORY_ENTRIES = 256
# The function the transpiler's base defines: (source, filename) -> the stripped text.
STRIP_FUNCTION = "__vmStripTypes"
STRIP_DEFINITION = (
    "(() => { const sucrase = require('sucrase');"
    " globalThis.__vmStripTypes = (source, filePath) => sucrase.transform(source, "
    "{transforms: ['typescript'], filePath, keepUnusedImports: false, "
    "disableESTransforms: true}).code; })();"
)
# Stripped once in the base, so that whatever the transpiler loads on first use is loaded
# there, in the state every clone starts from.
WARM_UP = "enum E { A } class C { constructor(private x: number) {} } export const f = (a: E): C => new C(a);"
_POSITION = re.compile(r"\s*\((\d+):(\d+)\)\s*$")


def transpiler_base(cache_dir: Path, registry: Callable[[], RegistryClient]) -> Callable[[], Sandbox]:
    """What `TypeScript` builds its base with: a sandbox holding the locked transpiler, its
    packages fetched into `cache_dir` on first use (from `registry()`, asked for only then: a
    run with no TypeScript never needs one)."""
    def make() -> Sandbox:
        locked = load_locked(TRANSPILER_LOCK, cache_dir, registry())
        packages = {name: Package(version, tree) for name, (version, tree) in locked.items()}
        sandbox, _ = sandbox_with_packages(packages, STRIP_LIMITS)
        out = sandbox.eval(STRIP_DEFINITION, filename="vm-system:typescript")
        if out.status != "ok":
            sandbox.close()
            reason = out.error.message if out.error is not None else out.status
            raise RuntimeError(f"the transpiler failed to load: {reason}")
        warm = sandbox.call(STRIP_FUNCTION, WARM_UP, "warm-up.ts")
        if warm.status != "ok":
            sandbox.close()
            raise RuntimeError(f"the transpiler failed its warm-up: {warm.error}")
        sandbox.checkpoint("transpiler")
        return sandbox
    return make


def is_typescript(path: str) -> bool:
    return path.endswith(TYPESCRIPT_SUFFIXES)


class TypeScriptError(Exception):
    """A file the transpiler refused (a syntax error), or the transpiler failing to run."""

    def __init__(self, message: str, *, path: str, line: int | None = None,
                 column: int | None = None) -> None:
        super().__init__(message)
        self.message, self.path, self.line, self.column = message, path, line, column


class TypeScript:
    """Strips types, in a sandbox made from `make_base` (a sandbox where `STRIP_FUNCTION` is
    defined; built on first use, then cloned for every file)."""

    def __init__(self, make_base: Callable[[], Sandbox], *, cache_dir: Path | None = None,
                 limits: Limits = STRIP_LIMITS) -> None:
        self._make_base = make_base
        self._cache_dir = cache_dir
        self._limits = limits
        self._base: Sandbox | None = None
        self._lock = threading.Lock()
        self._memory: OrderedDict[str, str] = OrderedDict()

    def strip(self, source: str, path: str) -> str:
        """`source` (the file at worktree path `path`) as JavaScript, on the same lines.

        Raises TypeScriptError naming `path` (and the line and column) when it is not valid
        TypeScript, is too large, or the transpiler cannot run."""
        if len(source) > MAX_SOURCE_CHARS:
            raise TypeScriptError(f"{path}: {len(source)} characters; TypeScript files are "
                                  f"stripped up to {MAX_SOURCE_CHARS}", path=path)
        # The transpiler and how it is called are part of the key: a change to either is a miss.
        key = hashlib.sha256(f"{TRANSPILER}\0{STRIP_DEFINITION}\0{source}".encode("utf-8", "surrogatepass")).hexdigest()
        cached = self._cached(key)
        if cached is not None:
            return cached
        code = self._transpile(source, path)
        self._remember(key, code)
        return code

    def javascript(self, source: str, path: str) -> str:
        """What runs for the TypeScript file `path`: its stripped text, or a script that throws
        what stopped it (a SyntaxError naming the `.ts` line), so that a file that does not
        strip fails as an execution, as a JavaScript file that does not parse does."""
        try:
            return self.strip(source, path)
        except TypeScriptError as exc:
            return throwing_script(exc)

    def transform(self, name: str, source: str) -> str:
        """The loader's transform (`ImportLoader(transform=...)`): an import or require of a
        file that does not strip fails, naming its line, before anything of it runs."""
        try:
            return self.strip(source, name)
        except TypeScriptError as exc:
            code = "ERR_INVALID_TYPESCRIPT_SYNTAX" if exc.line is not None else "ERR_TRANSFORM_FAILED"
            raise ImportRefused(code, exc.message) from None

    def close(self) -> None:
        with self._lock:
            if self._base is not None:
                self._base.close()
                self._base = None

    # ----- the transpiler ---------------------------------------------------------------------

    def _transpile(self, source: str, path: str) -> str:
        with self._lock:
            if self._base is None:
                try:
                    self._base = self._make_base()
                except TypeScriptError:
                    raise
                except Exception as exc:  # noqa: BLE001 - reported as the transpiler's failure
                    # Reported as the file's failure (an execution error); logged for the operator.
                    log.warning("typescript_base_failed", error=str(exc))
                    raise TypeScriptError(f"{path}: the TypeScript transpiler is unavailable: "
                                          f"{getattr(exc, 'message', None) or exc}", path=path) from exc
            sandbox = self._base.clone(self._limits)
        try:
            out = sandbox.call(STRIP_FUNCTION, source, path)
        finally:
            sandbox.close()
        if out.status == "ok" and out.value is not None and isinstance(out.value.get("json"), str):
            return str(out.value["json"])
        if out.status == "error" and out.error is not None:
            raise _syntax_error(out.error.message, path)
        reason = out.error.message if out.error is not None else out.status
        raise TypeScriptError(f"{path}: the TypeScript transpiler stopped: {reason}", path=path)

    # ----- the cache --------------------------------------------------------------------------

    def _cached(self, key: str) -> str | None:
        with self._lock:
            hit = self._memory.get(key)
            if hit is not None:
                self._memory.move_to_end(key)
                return hit
        if self._cache_dir is None:
            return None
        try:
            text = (self._cache_dir / f"{key}.js").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        with self._lock:
            self._memory[key] = text
        return text

    def _remember(self, key: str, code: str) -> None:
        with self._lock:
            self._memory[key] = code
            while len(self._memory) > _MEMORY_ENTRIES:
                self._memory.popitem(last=False)
        if self._cache_dir is not None:  # not written: only the next process transpiles it again
            keep(self._cache_dir / f"{key}.js", code.encode("utf-8", "surrogatepass"))


def _syntax_error(message: str, path: str) -> TypeScriptError:
    """Sucrase says where as `message (line:column)`; the error names the file's line."""
    found = _POSITION.search(message)
    if found is None:
        return TypeScriptError(f"{path}: {message}", path=path)
    line, column = int(found.group(1)), int(found.group(2))  # both from 1
    text = message[:found.start()]
    prefix = f"Error transforming {path}: "
    if text.startswith(prefix):
        text = text[len(prefix):]
    return TypeScriptError(f"{path}:{line}:{column}: {text}", path=path, line=line, column=column)


def throwing_script(error: TypeScriptError) -> str:
    """A script that fails as the file would have: a SyntaxError naming its line when it does
    not parse, an Error saying why when the transpiler could not run."""
    kind = "SyntaxError" if error.line is not None else "Error"
    return f"throw new {kind}({json.dumps(error.message)});"
