"""A process that writes to a store, for the crash and two-process tests.

Run as a script (`python store_child.py MODE DB ...`) with the repository root on
PYTHONPATH. It reports on stdout, one flushed line per committed fact, so the parent knows
what was durable at the moment it killed it:
    ready                 the store is open and a first commit is done
    finished <id>         finish_execution(<id>) committed
    done <count>          (writer mode) the time is up
"""

from __future__ import annotations

import random
import sys
import time

from store import NewEvent, Store

VALUE = {"type": "number", "preview": "42", "json": 42}
ERROR = {"kind": "exception", "name": "Error", "message": "boom"}


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def one_execution(store: Store, rng: random.Random, session_id: str | None) -> str:
    execution = store.create_execution("repl" if session_id else "run",
                                       session_id=session_id, input="work()")
    streamed = rng.randrange(0, 40)
    seq = 0
    while seq < streamed:
        # Mix one-at-a-time streaming with small batches, as the pipeline does.
        size = min(rng.choice((1, 1, 1, 5, 17)), streamed - seq)
        store.append_events(execution.id, [
            NewEvent(seq + i, "console", {"level": "log", "text": "x" * rng.randrange(200)})
            for i in range(1, size + 1)
        ])
        seq += size
    tail = [NewEvent(seq + i, "console", {"level": "log", "text": "tail"})
            for i in range(1, rng.randrange(0, 120))]
    seq += len(tail)
    if rng.random() < 0.5:
        store.finish_execution(execution.id, "ok", result=VALUE, metrics={"events": seq + 1},
                               remaining_events=[*tail, NewEvent(seq + 1, "value", VALUE)])
    else:
        store.finish_execution(execution.id, "error", error=ERROR, metrics={"events": seq + 1},
                               remaining_events=[*tail, NewEvent(seq + 1, "exception", ERROR)])
    return execution.id


def crash_writer(path: str, seed: int) -> None:
    rng = random.Random(seed)
    store = Store.open(path)
    template = store.create_template(f"crash-{seed}")
    session = store.create_session(template.id, "ws", "oid", "/tmp/wt", status="starting")
    say("ready")
    store.set_session_status(session.id, "ready")
    while True:
        if rng.random() < 0.1:
            store.save_image(session.id, rng.randbytes(rng.randrange(1, 64 * 1024)),
                             format_version=1, guest_sha256="h", memory_size=65536)
        execution_id = one_execution(store, rng, session.id if rng.random() < 0.8 else None)
        say(f"finished {execution_id}")


def timed_writer(path: str, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    store = Store.open(path)
    template = store.create_template(f"writer-{seed}")
    session = store.create_session(template.id, "ws", "oid", "/tmp/wt", status="ready")
    say("ready")
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        one_execution(store, rng, session.id)
        count += 1
    store.close()
    say(f"done {count}")


if __name__ == "__main__":
    mode, db = sys.argv[1], sys.argv[2]
    if mode == "crash-writer":
        crash_writer(db, int(sys.argv[3]))
    elif mode == "timed-writer":
        timed_writer(db, float(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")
