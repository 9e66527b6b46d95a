"""The modules end to end through real daemons: a template enables and scopes them over REST,
a session (in a worker process of the shared daemon) uses them from repl and run-file, the
calls are events, and a restarted daemon gives a restored session the same grants."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_daemon import checked_client, error_of, events_of, new_session, new_template, repl, start_daemon


def _grant(api: httpx.Client, template_id: str, kind: str, config: dict[str, Any] | None) -> None:
    r = api.post(f"/templates/{template_id}/modules", json={"name": kind})
    assert r.status_code == 201, r.text
    if config is not None:
        r = api.post(f"/templates/{template_id}/capabilities",
                     json={"kind": kind, "name": kind, "config": config})
        assert r.status_code == 201, r.text


@pytest.fixture
def files(tmp_path: Path) -> Path:
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / "data.json").write_text('{"items": [1, 2, 3]}')
    (wt / "report.mjs").write_text(
        "import { readFileSync, writeFileSync } from 'fs';\n"
        "import db from 'database';\n"
        "const { items } = JSON.parse(readFileSync('data.json'));\n"
        "db.exec('CREATE TABLE IF NOT EXISTS item (n INTEGER)');\n"
        "for (const n of items) db.exec('INSERT INTO item VALUES (?)', n);\n"
        "const [{ total }] = db.query('SELECT sum(n) AS total FROM item');\n"
        "writeFileSync('total.txt', String(total));\n"
        "export { total };\n")
    return wt


def test_fs_and_database_from_run_file_and_repl(api: httpx.Client, files: Path) -> None:
    tpl = new_template(api)
    _grant(api, tpl["id"], "fs", {"write": True})
    _grant(api, tpl["id"], "database", None)
    sess = new_session(api, tpl["id"], files)
    r = api.post("/executions/run-file", json={"session_id": sess["id"], "path": "report.mjs"})
    assert r.status_code == 201, r.text
    ex = r.json()
    assert ex["status"] == "ok", ex
    assert ex["result"]["json"] == {"total": 6}
    assert (files / "total.txt").read_text() == "6"
    names = [e["payload"]["name"] for e in events_of(api, ex["id"]) if e["type"] == "host_call"]
    assert names[:2] == ["fs.readFile", "database.exec"]
    assert names[-1] == "fs.writeFile"
    again = repl(api, sess["id"], "require('database').query('SELECT count(*) AS n FROM item')")
    assert again["result"]["json"] == [{"n": 3}]


def test_a_module_not_enabled_and_a_bad_capability_through_rest(api: httpx.Client, files: Path) -> None:
    tpl = new_template(api)
    error_of(api.post(f"/templates/{tpl['id']}/modules", json={"name": "crypto"}), 422, "MODULE_NOT_ALLOWED")
    err = error_of(api.post(f"/templates/{tpl['id']}/capabilities",
                            json={"kind": "fs", "name": "fs", "config": {"max_file_bytes": "big"}}),
                   422, "INVALID_CAPABILITY")
    assert err["details"]["field"] == "config.max_file_bytes"
    sess = new_session(api, tpl["id"], files)
    ex = repl(api, sess["id"], "try { require('fs') } catch (e) { e.message }")
    assert ex["result"]["json"] == "module 'fs' is not enabled for this template"


class _Json(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Json)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_restarted_daemon_restores_a_session_with_its_grants(tmp_path: Path, files: Path,
                                                               origin: str) -> None:
    db = tmp_path / "vm.db"
    daemon = start_daemon(tmp_path / "d1", db=db)
    try:
        with checked_client(daemon.api) as api:
            tpl = new_template(api)
            _grant(api, tpl["id"], "database", None)
            _grant(api, tpl["id"], "fetch", {"origins": [
                {"origin": origin, "headers": {"Authorization": "Bearer s3cret"}}]})
            listed = api.get(f"/templates/{tpl['id']}/capabilities").json()
            assert "s3cret" not in json.dumps(listed)
            sess = new_session(api, tpl["id"], files)
            ex = repl(api, sess["id"], "const db = require('database');"
                                       "db.exec('CREATE TABLE kv (k TEXT, v TEXT)');"
                                       "db.exec('INSERT INTO kv VALUES (?, ?)', 'a', 'b'); 'stored'")
            assert ex["status"] == "ok", ex
    finally:
        assert daemon.stop() == 0
    daemon = start_daemon(tmp_path / "d2", db=db)
    try:
        with checked_client(daemon.api) as api:
            ex = repl(api, sess["id"], "(async () => [db.query('SELECT v FROM kv'),"
                                       f" await (await fetch('{origin}/')).json()])()")
            assert ex["status"] == "ok", ex
            assert ex["result"]["json"] == [[{"v": "b"}], {"auth": "Bearer s3cret"}]
    finally:
        assert daemon.stop() == 0
