"""Checkpoints of big heaps copy only the pages written since the last one (where the kernel
can track them), and are then byte for byte what a whole copy would be."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import Limits, Sandbox
from sandbox.checkpoints import INCREMENTAL_MIN_BYTES, PROTECT_AGAIN_EVERY
from sandbox.dirty_pages import dirty_pages

needs_tracking = pytest.mark.skipif(
    dirty_pages() is None, reason="this kernel cannot track written pages (whole copies only)")

BIG_HEAP = ("globalThis.big = []; for (let i = 0; i < 150000; i++) big.push({i, s: 'x' + i});"
            "var counter = 0")


def _big() -> Sandbox:
    sb = Sandbox(limits=Limits(mem_mb=128), auto_checkpoint=True)
    assert sb.eval(BIG_HEAP).status == "ok"
    assert sb._instance.capture_size() >= INCREMENTAL_MIN_BYTES
    sb.eval("counter")  # a whole copy after the growth above, tracked from here
    return sb


def _checkpoint_is_whole(sb: Sandbox) -> bool:
    checkpoint = sb._checkpoint.image
    whole = sb._instance.capture()
    return (checkpoint.size, checkpoint.stack_pointer, bytes(checkpoint.data)) == \
        (whole.size, whole.stack_pointer, bytes(whole.data))


MUTATIONS = st.sampled_from([
    "counter++",
    "big[counter % big.length].i = -counter",
    "big[(counter * 7919) % big.length].s += '!'",
    "big.push({q: counter})",
    "big.pop()",
    "globalThis['g' + counter] = 'x'.repeat(counter % 5000)",
    "delete globalThis['g' + (counter - 1)]",
    "for (let k = 0; k < 2000; k++) big[(k * 31) % big.length].i++",
    "new Array(20000).fill(counter).length",
    "JSON.stringify(big.slice(0, 50)).length",
    "Math.random()",
    "throw new Error('boom ' + counter)",
])


@needs_tracking
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MUTATIONS, min_size=1, max_size=12))
def test_incremental_checkpoints_equal_whole_copies(mutations: list[str]) -> None:
    with _big() as sb:
        for code in mutations:
            sb.eval(code)
            assert _checkpoint_is_whole(sb), f"after {code!r}"
        # A memory that grew is copied whole once; an evaluation that does not grow it after
        # that is a page update.
        before = sb._copies.incremental_copies
        sb.eval("counter")
        assert sb._copies.incremental_copies == before + 1
        assert _checkpoint_is_whole(sb)


@needs_tracking
def test_a_trap_rolls_back_to_the_last_incremental_checkpoint() -> None:
    with _big() as sb:
        for _ in range(5):
            assert sb.eval("counter++; big[counter].i = 1000 + counter").status == "ok"
        assert sb._copies.incremental_copies >= 5
        # Deep enough to overflow the stack block: the instance traps or the guard is hit.
        out = sb.eval("counter = -1; big[3].i = -1; (function f(n) { return f(n + 1) + 1 })(0)")
        assert out.status == "limit_exceeded" and out.session_state.state == "rolled_back"
        after = sb.eval("[counter, big[5].i, big[3].i, big.length]")
        assert after.value is not None and after.value["json"] == [5, 1005, 1003, 150000]
        # The restored instance is tracked again after its first whole copy.
        sb.eval("counter++")
        assert sb.eval("counter").value["json"] == 6  # type: ignore[index]
        assert _checkpoint_is_whole(sb)


@needs_tracking
def test_pages_stay_writable_until_protected_again_and_checkpoints_stay_exact() -> None:
    """Pages found written are left writable (copied at every checkpoint, no fault at the next
    write) until every PROTECT_AGAIN_EVERY-th checkpoint protects them again. Across two such
    cycles, with the written pages moving around the heap, every checkpoint is a whole copy's
    twin; and once a burst of writes is over, the pages it touched stop being copied."""
    with _big() as sb:
        sb.eval("for (let k = 0; k < big.length; k += 50) big[k].i++")  # a burst over the heap
        burst = sb._copies.last_copied
        for i in range(2 * PROTECT_AGAIN_EVERY + 3):
            assert sb.eval(f"big[({i} * 7919) % big.length].i = {i}; counter = {i}").status == "ok"
            assert _checkpoint_is_whole(sb), f"after evaluation {i}"
        quiet = sb._copies.last_copied
        assert quiet * 4 < burst, (quiet, burst)


@needs_tracking
def test_explicit_checkpoints_after_several_evaluations_are_exact() -> None:
    """The library default: no checkpoint after each evaluation. Pages written by every
    evaluation since the last checkpoint() stay writable, so the next one copies them all."""
    with Sandbox(limits=Limits(mem_mb=128)) as sb:
        assert sb.eval(BIG_HEAP).status == "ok"
        sb.checkpoint()
        before = sb._copies.incremental_copies
        for round_ in range(6):
            for i in range(round_ + 1):
                sb.eval(f"big[({round_ * 10 + i} * 7919) % big.length].i = -1; counter++")
            sb.checkpoint()
            assert _checkpoint_is_whole(sb), f"round {round_}"
        assert sb._copies.incremental_copies == before + 6
        # A trap rolls back to exactly that state.
        out = sb.eval("counter = -1; (function f() { return f() + 1 })()")
        assert out.session_state.state == "rolled_back"
        assert sb.eval("counter").value["json"] == 21  # type: ignore[index]


@needs_tracking
def test_a_heap_of_a_few_hundred_kib_is_tracked() -> None:
    with Sandbox(auto_checkpoint=True) as sb:
        sb.eval("globalThis.keep = []; for (let i = 0; i < 300; i++) keep.push('x'.repeat(1000) + i)")
        sb.eval("keep.length")  # the memory stops growing: tracked from this checkpoint on
        assert INCREMENTAL_MIN_BYTES <= sb._instance.capture_size() < 2 * 1024 * 1024
        before = sb._copies.incremental_copies
        for i in range(5):
            sb.eval(f"keep[{i * 37}] = 'changed {i}'")
            assert _checkpoint_is_whole(sb)
        assert sb._copies.incremental_copies == before + 5
        assert sb._copies.last_copied < sb._instance.capture_size() // 2


def test_small_sandboxes_keep_whole_copies() -> None:
    with Sandbox(auto_checkpoint=True) as sb:
        for _ in range(3):
            sb.eval("1 + 1")
        assert sb._copies.incremental_copies == 0
        assert _checkpoint_is_whole(sb)


def test_without_page_tracking_checkpoints_are_whole_and_the_same() -> None:
    """VM_SYSTEM_DIRTY_PAGES=0 (or a kernel without it): whole copies, same checkpoints."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "from sandbox import Sandbox, Limits\n"
        "from sandbox.dirty_pages import dirty_pages\n"
        "assert dirty_pages() is None\n"
        f"sb = Sandbox(limits=Limits(mem_mb=128), auto_checkpoint=True); sb.eval({BIG_HEAP!r})\n"
        "sb.eval('counter++'); sb.eval('big[7].i = -7')\n"
        "whole = sb._instance.capture()\n"
        "assert bytes(sb._checkpoint.image.data) == bytes(whole.data)\n"
        "print(sb._copies.incremental_copies)\n"
    )
    env = dict(os.environ, VM_SYSTEM_DIRTY_PAGES="0",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0"
