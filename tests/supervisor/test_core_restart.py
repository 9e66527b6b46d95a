"""Sessions survive a restart of the supervisor, clean or by SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from store import Store
from supervisor import Supervisor

CHILD = Path(__file__).with_name("restart_child.py")


def _spawn(db: Path, worktree: Path, mode: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen([sys.executable, str(CHILD), str(db), str(worktree), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _check_restored(db: Path, ids: list[str]) -> None:
    with Supervisor.open(db) as sup:
        assert sorted(sup.runtime_summary().active_session_ids) == sorted(ids)
        for n, sid in enumerate(ids):
            out = sup.repl(sid, "[add(10), history.join('+')]")
            assert out.status == "ok"
            assert out.result is not None and out.result["json"] == [10 + n, "made+used"]
        with Store.open(db) as store:
            for sid in ids:
                assert all(e.status != "running" for e in store.list_executions(sid, limit=100))


def test_clean_restart_restores_every_session(tmp_path: Path, worktree: Path) -> None:
    db = tmp_path / "clean.db"
    child = _spawn(db, worktree, "clean")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    ids = json.loads(out.splitlines()[0])
    _check_restored(db, ids)


def test_sigkill_mid_execution_restores_sessions_and_leaves_no_running_row(tmp_path: Path, worktree: Path) -> None:
    db = tmp_path / "killed.db"
    child = _spawn(db, worktree, "kill")
    assert child.stdout is not None
    ids = json.loads(child.stdout.readline())
    assert child.stdout.readline().strip() == "RUNNING"
    with Store.open(db) as store:  # wait until the spinning execution is recorded as running
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(e.status == "running" for e in store.list_executions(ids[0], limit=10)):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the child never started its execution")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    _check_restored(db, ids)
    with Store.open(db) as store:
        spun = [e for e in store.list_executions(ids[0], limit=10) if e.input and "spinning" in e.input]
        assert len(spun) == 1 and spun[0].status == "crashed"
        assert [ev.type for ev in store.list_events(spun[0].id)][-1] == "exception"


def test_a_tampered_image_crashes_only_its_session(tmp_path: Path, worktree: Path) -> None:
    db = tmp_path / "tampered.db"
    with Supervisor.open(db) as sup:
        template = sup.templates.create("t")
        good = sup.create_session(template.id, "ws", "abc", str(worktree)).id
        bad = sup.create_session(template.id, "ws", "abc", str(worktree)).id
        sup.repl(good, "var kept = 'good'")
        sup.repl(bad, "var kept = 'bad'")
    import sqlite3

    conn = sqlite3.connect(db)
    (data,) = conn.execute("SELECT data FROM images WHERE session_id = ? ORDER BY created_at DESC LIMIT 1",
                           (bad,)).fetchone()
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    conn.execute("UPDATE images SET data = ? WHERE session_id = ?", (bytes(flipped), bad))
    conn.commit()
    conn.close()
    with Supervisor.open(db) as sup:
        assert sup.runtime_summary().active_session_ids == [good]
        assert sup.repl(good, "kept").result["json"] == "good"  # type: ignore[index]
        session = sup.get_session(bad)
        assert session.status == "crashed"
        assert "integrity" in (session.last_error or "")


def test_an_image_cannot_be_moved_to_another_session(tmp_path: Path, worktree: Path) -> None:
    db = tmp_path / "moved.db"
    with Supervisor.open(db) as sup:
        template = sup.templates.create("t")
        a = sup.create_session(template.id, "ws", "abc", str(worktree)).id
        b = sup.create_session(template.id, "ws", "abc", str(worktree)).id
        sup.repl(a, "var who = 'a'")
    import sqlite3

    conn = sqlite3.connect(db)
    conn.execute("UPDATE images SET data = (SELECT data FROM images WHERE session_id = ?"
                 " ORDER BY created_at DESC LIMIT 1) WHERE session_id = ?", (a, b))
    conn.commit()
    conn.close()
    with Supervisor.open(db) as sup:
        assert sup.get_session(b).status == "crashed"
        assert sup.repl(a, "who").result["json"] == "a"  # type: ignore[index]


def test_an_unreadable_image_row_crashes_only_its_session(tmp_path: Path, worktree: Path) -> None:
    db = tmp_path / "unreadable.db"
    with Supervisor.open(db) as sup:
        template = sup.templates.create("t")
        good = sup.create_session(template.id, "ws", "abc", str(worktree)).id
        bad = sup.create_session(template.id, "ws", "abc", str(worktree)).id
    import sqlite3

    conn = sqlite3.connect(db)
    # Text with invalid UTF-8 where bytes belong: the row cannot even be decoded.
    conn.execute("UPDATE images SET data = CAST(x'ff00ff' AS TEXT) WHERE session_id = ?", (bad,))
    conn.commit()
    conn.close()
    with Supervisor.open(db) as sup:
        assert sup.runtime_summary().active_session_ids == [good]
        assert sup.get_session(bad).status == "crashed"
