"""Names a template may list as modules, and the built-ins it may not."""

from __future__ import annotations

import re

from supervisor.errors import ModuleNotAllowed, ValidationError
from supervisor.modules.capabilities import KINDS

# JavaScript built-ins and globals every sandbox already has: listing them as a module is a
# mistake the Go original let through silently.
BUILTINS = frozenset({
    "json", "math", "console", "date", "regexp", "promise", "reflect", "proxy", "intl", "array",
    "object", "string", "number", "boolean", "symbol", "bigint", "map", "set", "weakmap",
    "weakset", "error", "globalthis", "atomics", "arraybuffer", "dataview", "eval",
})

# Modules a template may grant: each one gives the guest something it lacks by default, and
# is scoped by the capability of its kind (supervisor/modules, docs/api.md "Modules"). Names an
# older catalog listed (crypto, util, ...) granted nothing and are refused now.
CATALOG = frozenset(KINDS)

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def check_module(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError("module name must be lowercase letters, digits, '-' or '_'", name=name)
    if name in BUILTINS:
        raise ModuleNotAllowed(f"{name} is a JavaScript built-in, not a module", name=name)
    if name not in CATALOG:
        raise ModuleNotAllowed(f"{name} is not in the module catalog", name=name,
                               catalog=sorted(CATALOG))
    return name
