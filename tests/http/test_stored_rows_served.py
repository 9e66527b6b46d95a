"""Rows that an older daemon (or another writer of the file) left deep or with NaN are still
served: 200 and strict JSON on every read route (issue 11), on a real daemon and SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from http_daemon import new_session, new_template, repl, start_daemon
from strict_json import nested_list, read_all, strict_client, strict_loads


@pytest.mark.parametrize("depth", [600, 5000])
def test_deep_and_nan_rows_are_served_as_strict_json(tmp_path: Path, worktree: Path, depth: int) -> None:
    daemon = start_daemon(tmp_path / "d")
    try:
        with strict_client(daemon.api) as client:
            template = new_template(client)
            session = new_session(client, template["id"], worktree)
            execution = repl(client, session["id"], "[1]")
            cap = client.post(f"/templates/{template['id']}/capabilities", json={"kind": "fs", "name": "n"})
            assert cap.status_code == 201
            deep = nested_list(depth)
            conn = sqlite3.connect(daemon.db)
            try:
                with conn:
                    conn.execute("UPDATE executions SET result = ?, args = ?, env = ? WHERE id = ?",
                                 ('{"type":"array","preview":"[ [Array] ]","json":' + deep + "}",
                                  '{"a":NaN,"b":[Infinity,-Infinity]}', '{"e":' + deep + "}",
                                  execution["id"]))
                    conn.execute("UPDATE events SET payload = ? WHERE execution_id = ? AND type = 'value'",
                                 ('{"type":"array","preview":"[ [Array] ]","json":' + deep + "}",
                                  execution["id"]))
                    conn.execute("UPDATE capabilities SET config = ? WHERE id = ?",
                                 ('{"c":' + deep + "}", cap.json()["id"]))
            finally:
                conn.close()
            executions = read_all(client, session["id"])
            served = next(e for e in executions if e["id"] == execution["id"])
            assert served["args"] == {"a": None, "b": [None, None]}
            assert served["env"] == {"json_omitted": "it is nested deeper than 64 levels"}
            assert "json" not in served["result"]
            for url in (f"/templates/{template['id']}", f"/templates/{template['id']}/capabilities"):
                r = client.get(url)
                assert r.status_code == 200, r.text
                strict_loads(r.content)
    finally:
        assert daemon.stop() == 0
