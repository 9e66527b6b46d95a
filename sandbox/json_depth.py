"""How deep JSON may nest where it crosses the boundary, and the check of a host value.

A value's `json` (deeper values get `json_omitted` instead), `call` arguments, `define_global`
values and host functions' results (deeper ones are refused). Deep nesting means deep recursion
in every parser on the way (the guest's own JSON.parse runs on a 1 MiB C stack with no overflow
check; Python's json raises RecursionError near 1,000 levels). Defined once, in the guest's
bootstrap, which enforces it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sandbox.errors import GuestCorrupted
from sandbox.guest_setup import bootstrap_source


def _bootstrap_constant(name: str) -> int:
    found = re.search(rb"const " + name.encode() + rb" = (\d+);", bootstrap_source())
    if found is None:
        raise GuestCorrupted(f"the bootstrap defines no {name}")
    return int(found.group(1))


JSON_MAX_DEPTH = _bootstrap_constant("JSON_MAX_DEPTH")
_CONTAINERS = (dict, list, tuple)


def check_depth(value: Any) -> None:
    """ValueError if containers in `value` nest deeper than JSON_MAX_DEPTH; without recursion,
    so any depth is only a refusal (json.dumps itself would raise RecursionError)."""
    if not isinstance(value, _CONTAINERS):
        return
    # Only containers are queued: the scalars of a wide value cost one isinstance each.
    todo: list[tuple[Any, int]] = [(value, 0)]
    # The deepest each container was reached at: a shared one is walked again only deeper,
    # and a cycle gets deeper until it is refused.
    deepest: dict[int, int] = {}
    while todo:
        v, depth = todo.pop()
        if depth >= JSON_MAX_DEPTH:
            raise ValueError(f"nested deeper than {JSON_MAX_DEPTH} levels")
        if deepest.get(id(v), -1) >= depth:
            continue
        deepest[id(v)] = depth
        children: Iterable[Any] = v.values() if isinstance(v, dict) else v
        todo.extend((c, depth + 1) for c in children if isinstance(c, _CONTAINERS))


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_INNERMOST = re.compile(r"\[\]|\{\}")
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def too_deep(value: Any, text: str) -> bool:
    """Whether `value`, encoded as `text` (as `json` writes it), nests containers deeper than
    JSON_MAX_DEPTH. Cheap for the common results: a text with fewer brackets than the limit,
    or a container of scalars and flat containers (rows of a query), is not looked at again."""
    if text.count("[") + text.count("{") < JSON_MAX_DEPTH or _two_levels(value):
        return False
    return text_too_deep(text)


def _two_levels(value: Any) -> bool:
    for child in value.values() if isinstance(value, dict) else value:
        if isinstance(child, _CONTAINERS):
            for grandchild in child.values() if isinstance(child, dict) else child:
                if isinstance(grandchild, _CONTAINERS):
                    return False
    return True


def text_too_deep(text: str) -> bool:
    """Whether JSON text (as `json` writes it) nests containers deeper than JSON_MAX_DEPTH:
    strings dropped, then innermost pairs removed a level at a time, all in C."""
    if text.count("[") + text.count("{") < JSON_MAX_DEPTH:
        return False
    rest = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(JSON_MAX_DEPTH):
        if not rest:
            return False
        rest = _INNERMOST.sub("", rest)  # one pass: one level (`{[]}` is two)
    return bool(rest)
