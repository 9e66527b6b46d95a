"""How a file run on its own (run-file, a startup file, a one-shot run, `vm-system run FILE`)
is evaluated: as an ES module, as a script, or as a CommonJS module.

* `.mjs`: an ES module (when the runtime allows ES modules; else a script, as before).
* `.cjs`: CommonJS: `module`, `exports`, `require`, `__filename` and `__dirname` are its own,
  relative requires start from its directory, and its value is its `module.exports`.
* `.js`: an ES module when the runtime allows them and the file uses ES module syntax (a static
  `import`, an `export`, `import.meta`: `module_syntax.uses_module_syntax`), else a script.
* Anything else (the REPL's input, `-e` code): a script.
"""

from __future__ import annotations

import json
from typing import Literal

from supervisor.imports.loader import GUEST_HOOK
from supervisor.imports.module_syntax import uses_module_syntax

EntryKind = Literal["module", "script", "commonjs"]


def entry_kind(filename: str, code: str, *, esm: bool) -> EntryKind:
    """(TypeScript files, stripped, as the JavaScript suffix they stand for: `.cts`, `.mts`, `.ts`.)"""
    if filename.endswith((".cjs", ".cts")):
        return "commonjs"
    if filename.endswith((".mjs", ".mts")):
        return "module" if esm else "script"
    if filename.endswith((".js", ".ts")) and esm and uses_module_syntax(code):
        return "module"
    return "script"


def commonjs_main(name: str, code: str) -> str:
    """The script that runs `code` as the CommonJS module `name` (a fresh run each time, as a
    main module is; a cycle back to it from its requires gets its partial exports)."""
    return f"{GUEST_HOOK}.main({json.dumps(name)}, {json.dumps(code)})"
