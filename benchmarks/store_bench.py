"""Store benchmark: the three figures issue 3 sets, measured on a real file.

    python -m benchmarks.store_bench [--runs 5] [--dir DIR] [--json]

* finish an execution with 100 events (one transaction)          target <= 2 ms median
* append events one at a time, one transaction each (live stream)  target >= 20,000 events/s
* next page of 100 events, execution of 1,000,000 events           target <= 2 ms median

Every figure is the median over `--runs` runs (each run itself a median or a rate over
many operations). The database lives in a temporary directory on the same disk as --dir
(default: the system temp dir), in WAL mode with synchronous=NORMAL, as the daemon runs it;
the append rate is also shown with synchronous=FULL for the durability trade-off.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from store import NewEvent, Store

VALUE = {"type": "number", "preview": "2", "json": 2}
LINE = {"level": "log", "text": "tick 12345: the quick brown fox jumps over the lazy dog"}


def _session(store: Store) -> str:
    template = store.create_template(f"bench-{random.getrandbits(64):x}")
    return store.create_session(template.id, "bench", "0" * 40, "/tmp/bench", status="ready").id


def finish_100(store: Store, samples: int) -> float:
    """Median seconds of finish_execution carrying 99 console events + the value event."""
    session_id = _session(store)
    timings = []
    for _ in range(samples):
        execution = store.create_execution("repl", session_id=session_id, input="work()")
        events = [NewEvent(seq, "console", LINE) for seq in range(1, 100)]
        events.append(NewEvent(100, "value", VALUE))
        started = time.perf_counter()
        store.finish_execution(
            execution.id,
            "ok",
            result=VALUE,
            metrics={"wall_ms": 1.0, "cpu_ms": 1.0, "events": 100},
            session_state={"state": "kept"},
            remaining_events=events,
        )
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def append_one_at_a_time(store: Store, count: int) -> float:
    """Events per second, each event its own append_events call and transaction."""
    execution = store.create_execution("run", input="stream()")
    # The events are built before the clock starts: the sandbox hands them over ready-made.
    events = [[NewEvent(seq, "console", LINE)] for seq in range(1, count + 1)]
    append = store.append_events
    started = time.perf_counter()
    for event in events:
        append(execution.id, event)
    elapsed = time.perf_counter() - started
    store.finish_execution(execution.id, "ok", result=VALUE,
                           remaining_events=[NewEvent(count + 1, "value", VALUE)])
    return count / elapsed


def populate(store: Store, total: int) -> str:
    execution = store.create_execution("run", input="flood()")
    batch = 10_000
    for start in range(1, total, batch):
        end = min(start + batch, total)
        store.append_events(execution.id, [NewEvent(s, "console", LINE) for s in range(start, end)])
    store.finish_execution(execution.id, "ok", result=VALUE,
                           remaining_events=[NewEvent(total, "value", VALUE)])
    return execution.id


def page_100(store: Store, execution_id: str, total: int, samples: int, rng: random.Random) -> float:
    """Median seconds of list_events(after_seq=<random cursor>, limit=100)."""
    timings = []
    for _ in range(samples):
        cursor = rng.randrange(0, total - 100)
        started = time.perf_counter()
        page = store.list_events(execution_id, after_seq=cursor, limit=100)
        timings.append(time.perf_counter() - started)
        if len(page) != 100 or page[0].seq != cursor + 1:
            raise AssertionError(f"wrong page after {cursor}")
    return statistics.median(timings)


def _runs(runs: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(runs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database")
    parser.add_argument("--events", type=int, default=1_000_000, help="size of the big execution")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    # The benchmark's own output is the table; the store's info logs would only interleave.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    out = sys.stdout.write
    rng = random.Random(7)

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="store-bench-") as tmp:
        figures: dict[str, object] = {}
        with Store.open(Path(tmp) / "bench.db") as store:
            finish = _runs(args.runs, lambda: finish_100(store, 200))
            append = _runs(args.runs, lambda: append_one_at_a_time(store, 20_000))
            started = time.perf_counter()
            big = populate(store, args.events)
            populate_s = time.perf_counter() - started
            page = _runs(args.runs, lambda: page_100(store, big, args.events, 1000, rng))
        with Store.open(Path(tmp) / "bench-full.db", synchronous="FULL") as store:
            append_full = _runs(3, lambda: append_one_at_a_time(store, 500))

    figures = {
        "finish_100_events_ms": {"median": statistics.median(finish) * 1e3,
                                 "runs": [x * 1e3 for x in finish], "target_max": 2.0},
        "append_one_at_a_time_events_per_s": {"median": statistics.median(append),
                                               "runs": append, "target_min": 20_000},
        "page_100_of_1m_ms": {"median": statistics.median(page) * 1e3,
                              "runs": [x * 1e3 for x in page], "target_max": 2.0,
                              "events_in_execution": args.events,
                              "populate_s": populate_s},
        "append_one_at_a_time_synchronous_full_events_per_s": {
            "median": statistics.median(append_full), "runs": append_full},
    }
    ok = (
        figures["finish_100_events_ms"]["median"] <= 2.0
        and figures["append_one_at_a_time_events_per_s"]["median"] >= 20_000
        and figures["page_100_of_1m_ms"]["median"] <= 2.0
    )
    if args.json:
        out(json.dumps({"figures": figures, "targets_met": ok}, indent=2) + "\n")
        return 0 if ok else 1

    def row(name: str, value: str, target: str, met: bool | None) -> None:
        verdict = "" if met is None else ("ok" if met else "MISSED")
        out(f"{name:<52} {value:>16} {target:>14} {verdict:>7}\n")

    out(f"store benchmark: median of {args.runs} runs, WAL + synchronous=NORMAL\n")
    row("measure", "median", "target", None)
    m = figures["finish_100_events_ms"]["median"]
    row("finish_execution with 100 events", f"{m:.3f} ms", "<= 2 ms", m <= 2.0)
    m = figures["append_one_at_a_time_events_per_s"]["median"]
    row("append_events one at a time", f"{m:,.0f} ev/s", ">= 20,000/s", m >= 20_000)
    m = figures["page_100_of_1m_ms"]["median"]
    row(f"list_events page of 100, execution of {args.events:,}", f"{m:.3f} ms", "<= 2 ms",
        m <= 2.0)
    m = figures["append_one_at_a_time_synchronous_full_events_per_s"]["median"]
    row("  (append one at a time with synchronous=FULL)", f"{m:,.0f} ev/s", "-", None)
    out(f"(populating {args.events:,} events took {populate_s:.1f} s)\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
