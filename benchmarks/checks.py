"""How an answer is compared with the expected one: the same rule for every engine and layer.

A benchmark never reports a speed for an engine that computed the wrong thing, so these checks
run on every warm-up call and on the last call of every sample (outside the timed stretch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.timing import CheckFailed


def same_value(got: Any, expected: Any) -> bool:
    """JSON-like equality across engines.

    Native QuickJS hands large integers back as floats, so a number equals a number of the
    same value; but True == 1 in Python, and a boolean must never pass for a number (or the
    reverse)."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return type(got) is type(expected) and got == expected
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        return got == expected
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(map(same_value, got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same_value(got[k], expected[k]) for k in got)
    return type(got) is type(expected) and got == expected


def expect_value(got: Any, expected: Any, what: str = "value") -> None:
    if not same_value(got, expected):
        raise CheckFailed(f"expected {what} {_short(expected)}, got {_short(got)}")


def outcome_value(out: Any) -> Any:
    """The JSON value of a successful sandbox Outcome; CheckFailed for anything else."""
    from sandbox import Outcome

    if not isinstance(out, Outcome):
        raise CheckFailed(f"expected an Outcome, got {type(out).__name__}")
    if out.status != "ok":
        detail = f"{out.error.name}: {out.error.message}" if out.error else ""
        raise CheckFailed(f"status {out.status} {detail}".strip())
    value = out.value or {}
    if value.get("type") == "undefined":
        return None  # as the other engines give it back, and as JSON.stringify has it
    if "json" not in value:
        raise CheckFailed(f"the value {value.get('preview', value)!r} is not JSON")
    return value["json"]


def outcome_expects(expected: Any) -> Callable[[Any], None]:
    """A check of a sandbox Outcome whose value must be `expected`."""

    def check(out: Any) -> None:
        expect_value(outcome_value(out), expected)

    return check


def console_texts(out: Any) -> list[str]:
    return [e.payload.get("text", "") for e in out.events if e.type == "console"]


def raise_problems(problems: Sequence[str], what: str = "problems") -> None:
    """One CheckFailed for a list of problems, the first few spelled out."""
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CheckFailed(f"{len(problems)} {what}: {shown}{more}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
