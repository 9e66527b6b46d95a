"""Sandboxes in different threads run at the same time; one epoch ticker serves them all."""

from __future__ import annotations

import threading

from sandbox import Limits, Sandbox
from sandbox.native_stack import on_roomy_stack


def test_a_running_guest_does_not_block_another_thread() -> None:
    # If a wasm call held the GIL, the second evaluation could not finish while the first
    # one spins; it finishes first, proving the two run at the same time.
    finished: list[str] = []
    started = threading.Event()
    with Sandbox(limits=Limits(wall_ms=3000, cpu_ms=3000)) as spinner, Sandbox() as quick:

        def spin() -> None:
            spinner.eval("console.log('go'); const t = Date.now(); while (Date.now() - t < 1000) {}",
                         on_event=lambda e: started.set())
            finished.append("spinner")

        thread = threading.Thread(target=spin)
        thread.start()
        assert started.wait(10)
        for _ in range(20):
            assert quick.eval("6 * 7").value["json"] == 42  # type: ignore[index]
        finished.append("quick")
        thread.join()
    assert finished == ["quick", "spinner"]


def test_one_epoch_ticker_for_all_sandboxes() -> None:
    sandboxes = [Sandbox() for _ in range(4)]
    try:
        tickers = [t for t in threading.enumerate() if t.name == "vm-system-epoch"]
        assert len(tickers) == 1
    finally:
        for sb in sandboxes:
            sb.close()


def test_threads_with_small_stacks_run_guests_on_the_big_stack_worker() -> None:
    results: dict[str, object] = {}
    previous = threading.stack_size(256 * 1024)
    try:
        def small() -> None:
            with Sandbox() as sb:
                results["deep"] = sb.eval("function f(n) { return n ? f(n - 1) + 1 : 0 } f(2000)").value
                results["worker"] = on_roomy_stack(lambda: threading.current_thread().name)
        thread = threading.Thread(target=small)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(previous)
    assert results["deep"] == {"type": "number", "preview": "2000", "json": 2000}
    assert results["worker"] == "vm-system-guest"


def test_many_threads_many_sandboxes_keep_their_own_state() -> None:
    errors: list[str] = []

    def work(n: int) -> None:
        with Sandbox() as sb:
            sb.eval(f"var mine = {n}")
            for i in range(50):
                out = sb.eval(f"console.log(mine); mine * 1000 + {i}")
                if out.value is None or out.value["json"] != n * 1000 + i:
                    errors.append(f"{n}/{i}: {out.value}")
                if out.events[0].payload["text"] != str(n):
                    errors.append(f"{n}/{i}: wrong console {out.events[0].payload}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
