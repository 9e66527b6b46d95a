"""JSON.parse then JSON.stringify of a 1 MiB document, which must come back byte for byte.

The document (records with numbers, strings, arrays, nested objects and literals; ASCII,
integers only, so that every engine writes it back identically) is made here, deterministically,
and handed to each context as a string by an untimed prelude."""

from __future__ import annotations

import functools
import json
import random

from benchmarks.comparison import comparison
from benchmarks.harness import Scenario
from benchmarks.timing import Plan
from benchmarks.workloads import Workload

SIZE = 1024 * 1024
CODE = "{ const o = JSON.parse(DOC); const s = JSON.stringify(o); s === DOC ? o.items.length : -1 }"
_WORDS = ("amber", "basalt", "cobalt", "dune", "ember", "flint", "garnet", "heath", "iris",
          "jade", "kestrel", "larch", "marble", "nimbus", "ochre", "pewter")


@functools.cache
def document(size: int = SIZE) -> tuple[str, int]:
    """(the compact JSON text of at most `size` bytes, its number of items)."""
    rng = random.Random(1024)
    items: list[dict[str, object]] = []
    text = json.dumps({"items": items}, separators=(",", ":"))
    used = len(text)
    while True:
        item = {"id": len(items), "name": " ".join(rng.choice(_WORDS) for _ in range(3)),
                "score": rng.randrange(-10**9, 10**9), "active": rng.random() < 0.5,
                "tags": [rng.choice(_WORDS) for _ in range(rng.randrange(0, 5))],
                "position": {"x": rng.randrange(-5000, 5000), "y": rng.randrange(-5000, 5000)},
                "parent": None if rng.random() < 0.3 else rng.randrange(0, len(items) + 1)}
        piece = len(json.dumps(item, separators=(",", ":"))) + (1 if items else 0)
        if used + piece > size:
            break
        items.append(item)
        used += piece
    text = json.dumps({"items": items}, separators=(",", ":"))
    return text, len(items)


def workload() -> Workload:
    text, count = document()
    return Workload("json-1mb", f"JSON.parse + JSON.stringify of a {len(text) / 2**20:.2f} MiB "
                    "document", CODE, count, Plan(3, 31, 1, 3),
                    prelude=f"globalThis.DOC = {json.dumps(text)};")


def scenario() -> Scenario:
    return comparison(workload())
