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


def check_depth(value: Any) -> None:
    """ValueError if containers in `value` nest deeper than JSON_MAX_DEPTH; without recursion,
    so any depth is only a refusal (json.dumps itself would raise RecursionError)."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    # The deepest each container was reached at: a shared one is walked again only deeper,
    # and a cycle gets deeper until it is refused.
    deepest: dict[int, int] = {}
    while todo:
        v, depth = todo.pop()
        children: Iterable[Any]
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        if depth >= JSON_MAX_DEPTH:
            raise ValueError(f"nested deeper than {JSON_MAX_DEPTH} levels")
        if deepest.get(id(v), -1) >= depth:
            continue
        deepest[id(v)] = depth
        todo.extend((c, depth + 1) for c in children)
