"""The module loader of a session: `import` and `require` of its worktree's files, its
template's packages and its enabled modules.

What a resolved name becomes (its format):

* `.mjs` (and `.mts`): an ES module, as it is.
* `.cjs` (and `.cts`): CommonJS.
* `.json`: JSON. An import gets `export default <the parsed value>`; `require` the value.
* `.js` (and `.ts`): the `type` of the nearest `package.json` above it in its tree (`module` or
  `commonjs`); without one, an ES module if it uses ES module syntax (`module_syntax`), else
  CommonJS.
* Any other extension, or none: refused (`ERR_UNKNOWN_FILE_EXTENSION`).

`.ts`, `.mts` and `.cts` files are loadable (and tried as extensions) only when the loader has
a `transform`, which turns their text into JavaScript; a transform that raises refuses the
import with its message.

CommonJS files run in the guest (`guest.js`): an import of one is a small ES module whose
default export is its `module.exports` and whose named exports are the names
`module_syntax.commonjs_exports` finds; `require` asks the host (`require` below, a host
function of the session) for a name's format and text, and the guest evaluates and caches it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from sandbox import ModuleRefused
from supervisor.imports.module_syntax import commonjs_exports, uses_module_syntax
from supervisor.imports.resolution import BUILTIN_PREFIX, ImportRefused, Location, Resolver

Transform = Callable[[str, str], str]
Format = Literal["module", "commonjs", "json"]

# What `import ... from "fs"` offers besides the default export (the module object).
BUILTIN_EXPORTS: dict[str, tuple[str, ...]] = {
    "fs": ("readFileSync", "writeFileSync", "appendFileSync", "readdirSync", "statSync",
           "lstatSync", "existsSync", "mkdirSync", "rmSync", "renameSync", "promises"),
    "database": ("configure", "query", "exec", "close", "queryAsync", "execAsync"),
    "exec": ("run", "spawn"),
    "fetch": ("fetch", "Headers", "Response"),
}
# The guest half's own entry points (guest.js): a global that a script can neither replace,
# delete nor shadow with a declaration of its own.
GUEST_HOOK = "__vmSystemCommonJS"
_LOCAL = "__vmSystemExports"

_FORMAT_BY_EXTENSION: dict[str, Format] = {
    ".mjs": "module", ".mts": "module", ".cjs": "commonjs", ".cts": "commonjs", ".json": "json",
}
_DETECTED = (".js", ".ts")
_TYPESCRIPT = (".ts", ".mts", ".cts")
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_RESERVED = frozenset((
    "await", "break", "case", "catch", "class", "const", "continue", "debugger", "default",
    "delete", "do", "else", "enum", "export", "extends", "false", "finally", "for", "function",
    "if", "implements", "import", "in", "instanceof", "interface", "let", "new", "null", "package",
    "private", "protected", "public", "return", "static", "super", "switch", "this", "throw",
    "true", "try", "typeof", "var", "void", "while", "with", "yield", "arguments", "eval",
    "undefined", "NaN", "Infinity",
))


def _extension(path: str) -> str:
    last = path.rpartition("/")[2]
    dot = last.rfind(".")
    return last[dot:] if dot > 0 else ""


class ImportLoader:
    """The `ModuleLoader` a session's sandbox is given, and the host half of its `require`."""

    def __init__(self, resolver: Resolver, transform: Transform | None = None) -> None:
        if transform is not None and not resolver.typescript:
            raise ValueError("a transform needs a resolver made with typescript=True")
        self.resolver = resolver
        self._transform = transform

    # ----- ModuleLoader -----------------------------------------------------------------------

    def resolve(self, specifier: str, referrer: str) -> str:
        return self.resolver.resolve(specifier, referrer, "import")

    def load(self, resolved: str) -> str:
        if resolved.startswith(BUILTIN_PREFIX):
            return self._builtin(resolved)
        location = self.resolver.locate(resolved)
        text = self._text(location)
        kind = self._format(location, text)
        if kind == "module":
            return text
        if kind == "json":
            return f"export default {GUEST_HOOK}.json({json.dumps(text)});\n"
        names = [n for n in commonjs_exports(text)
                 if _IDENTIFIER.match(n) and n not in _RESERVED and n != _LOCAL]
        lines = [f"const {_LOCAL} = {GUEST_HOOK}.define({json.dumps(resolved)}, {json.dumps(text)});",
                 f"export default {_LOCAL};"]
        lines += [f"export const {n} = {_LOCAL} == null ? undefined : {_LOCAL}.{n};" for n in names]
        return "\n".join(lines) + "\n"

    # ----- require ----------------------------------------------------------------------------

    def require(self, specifier: Any, referrer: Any) -> dict[str, Any]:
        """What `require(specifier)` in the module `referrer` loads: `{"name", "kind", "source"}`,
        kind `builtin` (source: the module's name), `commonjs` or `json`."""
        if not isinstance(referrer, str):
            raise ImportRefused("ERR_INVALID_ARG_TYPE", "the referrer must be a string")
        name = self.resolver.resolve(specifier, referrer, "require")
        if name.startswith(BUILTIN_PREFIX):
            return {"name": name, "kind": "builtin", "source": name[len(BUILTIN_PREFIX):]}
        location = self.resolver.locate(name)
        text = self._text(location)
        kind = self._format(location, text, required=True)
        if kind == "module":
            raise ImportRefused("ERR_REQUIRE_ESM", f"require() of the ES module {name} is not "
                                "supported: import it instead")
        return {"name": name, "kind": kind, "source": text}

    # ----- files ------------------------------------------------------------------------------

    def _builtin(self, resolved: str) -> str:
        bare = resolved[len(BUILTIN_PREFIX):]
        if bare not in self.resolver.modules:
            raise ModuleRefused("not a module of this template")
        names = "\n".join(f"export const {n} = {_LOCAL}.{n};" for n in BUILTIN_EXPORTS[bare])
        # A session imaged by a version before the hook existed has only its old `require`.
        return (f"const {_LOCAL} = typeof {GUEST_HOOK} === 'object' ? {GUEST_HOOK}.builtin({json.dumps(bare)})"
                f" : require({json.dumps(bare)});\n"
                f"export default {_LOCAL};\n{names}\n")

    def _text(self, location: Location) -> str:
        ext = _extension(location.path)
        if ext in _TYPESCRIPT and self._transform is None:
            raise ImportRefused("ERR_UNKNOWN_FILE_EXTENSION", f"{location.name}: TypeScript files "
                                "need a transform, and this session has none")
        if ext not in _FORMAT_BY_EXTENSION and ext not in _DETECTED:
            raise ImportRefused("ERR_UNKNOWN_FILE_EXTENSION",
                                f"{location.name}: unknown file extension '{ext}'")
        try:
            raw = location.tree.read(location.path)
        except FileNotFoundError:
            raise ImportRefused("MODULE_NOT_FOUND", f"{location.name} is gone") from None
        except OSError as exc:
            raise ImportRefused("ERR_MODULE_UNREADABLE",
                                f"{location.name}: {exc.strerror or 'cannot be read'}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportRefused("ERR_MODULE_UNREADABLE",
                                f"{location.name} is not valid UTF-8 (byte {exc.start})") from None
        if text.startswith("\ufeff"):
            text = text[1:]
        if ext in _TYPESCRIPT and self._transform is not None:
            try:
                text = self._transform(location.name, text)
            except ModuleRefused:
                raise
            except Exception as exc:  # noqa: BLE001 - the transform's message is the refusal
                raise ImportRefused("ERR_TRANSFORM_FAILED", f"{location.name}: {exc}") from None
            if not isinstance(text, str):
                raise ImportRefused("ERR_TRANSFORM_FAILED", f"{location.name}: the transform "
                                    "gave no text")
        return text

    def _format(self, location: Location, text: str, *, required: bool = False) -> Format:
        ext = _extension(location.path)
        if ext in _FORMAT_BY_EXTENSION:
            return _FORMAT_BY_EXTENSION[ext]
        declared = self.resolver.manifest_type(location.tree, location.path)
        if declared == "module":
            return "module"
        if declared == "commonjs":
            return "commonjs"
        if required and location.package is not None:
            # A package's `.js` that its own code requires is CommonJS, as Node takes it: no
            # syntax scan of every file of a large package (sucrase's 200 cost seconds).
            return "commonjs"
        return "module" if uses_module_syntax(text) else "commonjs"
