"""A supervisor process for the restart tests: builds three sessions with state, then either
closes cleanly or starts a never-ending execution and waits to be killed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from supervisor import Supervisor
from supervisor.logs import configure_logging


def main(db: str, worktree: str, mode: str) -> None:
    configure_logging(fmt="json")  # logs to stderr; stdout carries the protocol
    sup = Supervisor.open(Path(db))
    template = sup.templates.create("restart")
    ids = []
    for n in range(3):
        sid = sup.create_session(template.id, "ws", "abc", worktree).id
        sup.repl(sid, f"var n = {n}; const add = (x) => x + n; var history = ['made']")
        sup.repl(sid, "history.push('used')")
        ids.append(sid)
    sup.flush_images()
    print(json.dumps(ids), flush=True)
    if mode == "clean":
        sup.close()
        return
    print("RUNNING", flush=True)
    sup.repl(ids[0], "console.log('spinning'); for (;;) {}")  # killed while this runs


if __name__ == "__main__":
    main(*sys.argv[1:])
