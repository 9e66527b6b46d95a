"""Timers in every kind of execution through the real daemon: each execution runs to
completion, its events are persisted in order, and nothing of it is scheduled afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from http_daemon import events_of, new_session, new_template, repl
from route_checks import check_events


def _console(events: list[dict[str, Any]]) -> list[str]:
    return [e["payload"]["text"] for e in events if e["type"] == "console"]


def test_timers_in_startup_repl_and_run_file(api: httpx.Client, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / "boot.js").write_text("setTimeout(() => { globalThis.booted = 'yes' }, 10)\n")
    (wt / "job.js").write_text("setTimeout(() => console.log('file timer'), 10); 'file'\n")
    template = new_template(api)
    assert api.post(f"/templates/{template['id']}/startup-files",
                    json={"path": "boot.js"}).status_code == 201
    session = new_session(api, template["id"], wt)
    sid = session["id"]

    assert repl(api, sid, "booted")["result"]["json"] == "yes"

    execution = repl(api, sid, "setTimeout(() => console.log('late'), 20); 'now'")
    assert execution["status"] == "ok"
    assert execution["result"]["json"] == "now"
    assert execution["metrics"]["timers_fired"] == 1
    events = events_of(api, execution["id"])
    check_events(events, execution)
    assert [e["type"] for e in events] == ["input_echo", "console", "value"]

    r = api.post("/executions/run-file", json={"session_id": sid, "path": "job.js"})
    assert r.status_code == 201, r.text
    ran = r.json()
    assert ran["result"]["json"] == "file"
    assert _console(events_of(api, ran["id"])) == ["file timer"]


def test_an_interval_ends_at_the_wall_limit_and_is_gone_next_time(api: httpx.Client,
                                                                  tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    wt.mkdir()
    template = new_template(api, limits={"wall_ms": 300})
    sid = new_session(api, template["id"], wt)["id"]
    stopped = repl(api, sid, "setInterval(() => console.log('tick'), 5)")
    assert stopped["status"] == "timeout"
    assert stopped["error"]["kind"] == "timeout"
    assert stopped["metrics"]["timers_cancelled"] == 1
    events = events_of(api, stopped["id"])
    check_events(events, stopped)
    assert events[-1]["type"] == "limit"

    later = repl(api, sid, "new Promise(r => setTimeout(r, 50)).then(() => 'quiet')")
    assert later["status"] == "ok"
    assert later["result"]["json"] == "quiet"
    assert _console(events_of(api, later["id"])) == []


def test_one_off_run_runs_to_completion(api: httpx.Client) -> None:
    r = api.post("/run", json={"code": "let n = 0; const i = setInterval(() => { "
                                       "console.log('n', ++n); if (n === 3) clearInterval(i) }, 1); "
                                       "'started'"})
    assert r.status_code == 201, r.text
    execution = r.json()
    assert execution["result"]["json"] == "started"
    assert _console(events_of(api, execution["id"])) == ["n 1", "n 2", "n 3"]
