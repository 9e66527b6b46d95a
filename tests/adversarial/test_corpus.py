"""Every hostile script of the corpus gets its expected outcome, and the sandbox survives it."""

from __future__ import annotations

import pytest
from adversarial_corpus import (
    BASE,
    CASES,
    LIMIT_NAME_OF_KIND,
    MEM_MB,
    Case,
    check_outcome,
    check_usable,
    plant_canary,
    run,
)

from sandbox import Sandbox

CATEGORIES = {"cpu", "wall", "tamper", "memory", "stack", "output", "host", "pollution"}


def test_corpus_is_large_and_well_formed() -> None:
    assert len(CASES) >= 40
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names), "case names must be unique"
    assert {c.category for c in CASES} == CATEGORIES
    for c in CASES:
        assert c.limits.mem_mb == MEM_MB, c.name
        assert c.mode in ("script", "module"), c.name
        if c.status == "ok":
            assert c.kind is None, c.name
        elif c.status == "error":
            assert c.kind == "exception", c.name
        elif c.status == "timeout":
            assert c.kind in ("timeout", "cpu_limit"), c.name
        else:
            assert c.status == "limit_exceeded" and c.kind in LIMIT_NAME_OF_KIND, c.name
    # Every limit is exercised.
    assert {c.kind for c in CASES} >= set(LIMIT_NAME_OF_KIND) | {"exception"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_script(case: Case) -> None:
    with Sandbox(limits=BASE) as sb:
        plant_canary(sb)
        out, call = run(sb, case)
        check_outcome(case, out, call)
        check_usable(sb)


def test_shared_sandbox_gauntlet() -> None:
    """The shareable cases one after another in ONE sandbox: stops, rollbacks and checkpoints
    accumulate, and every case must still behave as it does in a fresh sandbox.

    A case that fails is recorded and the gauntlet goes on in a new sandbox, so the failure
    list names every case that misbehaves after the ones before it.
    """
    failures: list[str] = []
    shared = [c for c in CASES if c.shareable]
    assert len(shared) >= 40
    sb = Sandbox(limits=BASE)
    try:
        plant_canary(sb)
        for case in shared:
            try:
                out, call = run(sb, case)
                check_outcome(case, out, call)
                check_usable(sb)
            except AssertionError as exc:
                failures.append(f"{case.name}: {str(exc).splitlines()[0][:400]}")
                sb.close()
                sb = Sandbox(limits=BASE)
                plant_canary(sb)
    finally:
        sb.close()
    assert not failures, f"{len(failures)} of {len(shared)} cases failed in the shared sandbox:\n" + \
        "\n".join(failures)
