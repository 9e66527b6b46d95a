"""The daemon against its own OpenAPI document (schemathesis): no 5xx, and every response has a
documented status, the documented content type and matches its documented schema.

Three passes, bounded (a few examples per operation; well under two minutes in all):
* generated requests for every operation (mostly refused input: 400/404/422 envelopes);
* every operation called with REAL ids and valid bodies, so the success responses are checked;
* schemathesis' stateful phase, following the links it infers (create → use the id).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from http_daemon import Daemon, make_worktree, new_session, new_template, repl, start_daemon
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# The package store's registry is a local registry-shaped server (tests/packages), so that
# `POST /libraries` never reaches the real npm registry from generated requests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages"))
from registry_server import LocalRegistry  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES_PER_OPERATION = 25

# Real ids (filled by `seeded`): half of the generated cases get them in place of the random
# strings the document allows, so generation reaches past the id checks into the handlers.
REAL: dict[str, str] = {}


def _with_real_ids(case: Any) -> Any:
    if case.method.upper() == "DELETE" or case.path.endswith("/close"):
        return case  # keep the shared resources alive for the other operations
    for params in (case.path_parameters, case.query):
        if isinstance(params, dict):
            for key in params:
                if key in REAL:
                    params[key] = REAL[key]
    if isinstance(case.body, dict):
        for key in case.body:
            if key in REAL:
                case.body[key] = REAL[key]
    return case


@schemathesis.hook
def before_generate_case(context: Any, strategy: Any) -> Any:
    return st.tuples(strategy, st.booleans()).map(lambda pair: _with_real_ids(pair[0]) if pair[1] else pair[0])


@pytest.fixture(scope="module")
def st_registry() -> Iterator[LocalRegistry]:
    with LocalRegistry() as reg:
        for version in ("1.0.0", "1.1.0", "2.0.0"):
            reg.publish("st-pkg", version, {"index.js": b"module.exports = 1;\n"})
        reg.publish("@st/scoped", "1.0.0", {"index.js": b"1"})
        yield reg


@pytest.fixture(scope="module")
def st_daemon(tmp_path_factory: pytest.TempPathFactory, st_registry: LocalRegistry) -> Any:
    root = tmp_path_factory.mktemp("schemathesis")
    proc = start_daemon(root / "daemon", "--registry", st_registry.url)
    proc.worktree = make_worktree(root)  # type: ignore[attr-defined]
    yield proc
    rc = proc.stop()
    assert rc == 0, f"the schemathesis daemon (fixture `st_daemon`) exited {rc} after SIGTERM"


@pytest.fixture(scope="module")
def seeded(st_daemon: Daemon) -> dict[str, Any]:
    """Real resources, so lists are not empty and real ids exist."""
    with httpx.Client(base_url=st_daemon.api, timeout=30) as api:
        template = new_template(api)
        tid = template["id"]
        capability = api.post(f"/templates/{tid}/capabilities", json={"kind": "fs", "name": "x"}).json()
        startup = api.post(f"/templates/{tid}/startup-files", json={"path": "first.js"}).json()
        assert api.post(f"/templates/{tid}/modules", json={"name": "fs"}).status_code == 201
        assert api.post(f"/templates/{tid}/libraries", json={"name": "greet@1.0.0"}).status_code == 201
        session = new_session(api, tid, st_daemon.worktree)  # type: ignore[attr-defined]
        execution = repl(api, session["id"], "console.log('seed'); 1")
        REAL.update(template_id=tid, session_id=session["id"], execution_id=execution["id"],
                    capability_id=capability["id"], startup_file_id=startup["id"],
                    worktree_path=str(st_daemon.worktree))  # type: ignore[attr-defined]
        return {"template": template, "capability": capability, "startup": startup, "session": session,
                "execution": execution, "worktree": str(st_daemon.worktree)}  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def st_schema(st_daemon: Daemon, seeded: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_url(f"{st_daemon.api}/openapi.json")


schema = schemathesis.pytest.from_fixture("st_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate, Phase.shrink], derandomize=True, database=None)
def test_generated_requests_conform(case: Any, st_daemon: Daemon) -> None:
    response = case.call(base_url=st_daemon.url, timeout=30)
    case.validate_response(response, checks=CHECKS)


def test_success_responses_conform(st_schema: Any, st_daemon: Daemon, seeded: dict[str, Any]) -> None:
    """Every operation with real ids and a valid body: 2xx, and the body matches its schema."""
    with httpx.Client(base_url=st_daemon.api, timeout=30) as api:
        tid = new_template(api)["id"]
        api.post(f"/templates/{tid}/libraries", json={"name": "greet@1.0.0"})
        sid = new_session(api, tid, Path(seeded["worktree"]))["id"]
        eid = repl(api, sid, "console.log('x'); 2")["id"]
        extra_tpl = new_template(api)["id"]
        api.post(f"/templates/{extra_tpl}/modules", json={"name": "exec"})
        api.post(f"/templates/{extra_tpl}/libraries", json={"name": "greet@1.0.0"})
        cap = api.post(f"/templates/{extra_tpl}/capabilities", json={"kind": "exec", "name": "n"}).json()["id"]
        sf = api.post(f"/templates/{extra_tpl}/startup-files", json={"path": "main.js"}).json()["id"]
        to_close = new_session(api, tid, Path(seeded["worktree"]))["id"]
        to_delete = new_session(api, tid, Path(seeded["worktree"]))["id"]
        doomed_tpl = new_template(api)["id"]
        for spec in ("st-pkg@1.0.0", "st-pkg@1.1.0", "@st/scoped@1.0.0"):
            assert api.post("/libraries", json={"name": spec}).status_code == 201
        assert api.post(f"/templates/{extra_tpl}/libraries", json={"name": "@st/scoped@1.0.0"}).status_code == 201
    calls: list[tuple[str, str, dict[str, Any], dict[str, Any] | None, Any]] = [
        ("GET", "/api/v1/health", {}, None, None),
        ("GET", "/api/v1/runtime/summary", {}, None, None),
        ("POST", "/api/v1/templates", {}, None, {"name": "schemathesis-made", "engine": "quickjs"}),
        ("GET", "/api/v1/templates", {}, None, None),
        ("GET", "/api/v1/templates/{template_id}", {"template_id": tid}, None, None),
        ("GET", "/api/v1/templates/{template_id}/settings", {"template_id": tid}, None, None),
        ("PATCH", "/api/v1/templates/{template_id}/settings", {"template_id": tid}, None,
         {"limits": {"wall_ms": 4000}, "runtime": {"strict": True}}),
        ("POST", "/api/v1/templates/{template_id}/capabilities", {"template_id": tid}, None,
         {"kind": "database", "name": "read", "enabled": True, "config": {"max_rows": 10}}),
        ("GET", "/api/v1/templates/{template_id}/capabilities", {"template_id": tid}, None, None),
        ("DELETE", "/api/v1/templates/{template_id}/capabilities/{capability_id}",
         {"template_id": extra_tpl, "capability_id": cap}, None, None),
        ("POST", "/api/v1/templates/{template_id}/startup-files", {"template_id": tid}, None,
         {"path": "second.js", "order_index": 1, "mode": "eval"}),
        ("GET", "/api/v1/templates/{template_id}/startup-files", {"template_id": tid}, None, None),
        ("DELETE", "/api/v1/templates/{template_id}/startup-files/{startup_file_id}",
         {"template_id": extra_tpl, "startup_file_id": sf}, None, None),
        ("POST", "/api/v1/templates/{template_id}/modules", {"template_id": tid}, None, {"name": "database"}),
        ("GET", "/api/v1/templates/{template_id}/modules", {"template_id": tid}, None, None),
        ("DELETE", "/api/v1/templates/{template_id}/modules/{name}", {"template_id": extra_tpl, "name": "exec"},
         None, None),
        ("GET", "/api/v1/templates/{template_id}/libraries", {"template_id": tid}, None, None),
        ("DELETE", "/api/v1/templates/{template_id}/libraries/{name}",
         {"template_id": extra_tpl, "name": "greet@1.0.0"}, None, None),
        ("DELETE", "/api/v1/templates/{template_id}/libraries/@{scope}/{name}",
         {"template_id": extra_tpl, "scope": "st", "name": "scoped@1.0.0"}, None, None),
        ("POST", "/api/v1/templates/{template_id}/libraries", {"template_id": extra_tpl}, None,
         {"name": "greet@1.0.0"}),
        ("POST", "/api/v1/sessions", {}, None, {"template_id": tid, "workspace_id": "w", "base_commit_oid": "c",
                                               "worktree_path": seeded["worktree"]}),
        ("GET", "/api/v1/sessions", {}, None, None),
        ("GET", "/api/v1/sessions", {}, {"status": "ready"}, None),
        ("GET", "/api/v1/sessions/{session_id}", {"session_id": sid}, None, None),
        ("POST", "/api/v1/sessions/{session_id}/close", {"session_id": to_close}, None, None),
        ("DELETE", "/api/v1/sessions/{session_id}", {"session_id": to_delete}, None, None),
        ("POST", "/api/v1/executions/repl", {}, None, {"session_id": sid, "input": "console.log(1); ({a: [1]})"}),
        ("POST", "/api/v1/executions/repl", {}, None, {"session_id": sid, "input": "throw new Error('x')"}),
        ("POST", "/api/v1/executions/run-file", {}, None,
         {"session_id": sid, "path": "main.js", "args": {"x": 1}, "env": {"Y": "2"}}),
        ("POST", "/api/v1/run", {}, None, {"code": "1 + 1", "limits": {"wall_ms": 1000}}),
        ("POST", "/api/v1/run", {}, None, {"code": "while (true) {}", "limits": {"wall_ms": 100}}),
        ("GET", "/api/v1/executions", {}, {"session_id": sid, "limit": 10}, None),
        ("GET", "/api/v1/executions/{execution_id}", {"execution_id": eid}, None, None),
        ("GET", "/api/v1/executions/{execution_id}/events", {"execution_id": eid}, {"after_seq": 0}, None),
        ("GET", "/api/v1/executions/{execution_id}/events/stream", {"execution_id": eid}, None, None),
        ("DELETE", "/api/v1/templates/{template_id}", {"template_id": doomed_tpl}, None, None),
        ("POST", "/api/v1/libraries", {}, None, {"name": "st-pkg-2.0.0", "with_deps": True}),
        ("GET", "/api/v1/libraries", {}, None, None),
        ("GET", "/api/v1/libraries/{name}/{version}", {"name": "st-pkg", "version": "1.0.0"}, None, None),
        ("GET", "/api/v1/libraries/@{scope}/{name}/{version}",
         {"scope": "st", "name": "scoped", "version": "1.0.0"}, None, None),
        ("POST", "/api/v1/libraries/verify", {}, None, None),
        ("DELETE", "/api/v1/libraries/{name}/{version}", {"name": "st-pkg", "version": "1.1.0"}, None, None),
        ("DELETE", "/api/v1/libraries/@{scope}/{name}/{version}",
         {"scope": "st", "name": "scoped", "version": "1.0.0"}, None, None),
    ]
    covered = set()
    for method, path, path_parameters, query, body in calls:
        operation = st_schema[path][method]
        kwargs: dict[str, Any] = {"path_parameters": path_parameters}
        if query is not None:
            kwargs["query"] = query
        if body is not None:
            kwargs["body"] = body
            kwargs["media_type"] = "application/json"
        case = operation.Case(**kwargs)
        response = case.call(base_url=st_daemon.url, timeout=30)
        assert 200 <= response.status_code < 300, (method, path, response.status_code, response.text)
        case.validate_response(response, checks=CHECKS)
        covered.add((method, path))
    documented = {(method.upper(), path) for path, methods in st_schema.raw_schema["paths"].items()
                  for method in methods}
    assert documented <= covered, f"operations never called with valid input: {sorted(documented - covered)}"


def test_stateful_links(st_daemon: Daemon, seeded: dict[str, Any], tmp_path: Path) -> None:
    """Schemathesis' stateful phase (create → use the returned id, following the links it infers),
    run by its own engine: Hypothesis' state machines replayed against a live server report
    spurious FlakyStrategyDefinition errors, the engine handles that."""
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{st_daemon.api}/openapi.json",
           "--phases", "stateful", "--checks", ",".join(c.__name__ for c in CHECKS),
           "--max-examples", "100", "--seed", "20261125", "--workers", "1", "--no-color",
           "--report", "junit", "--report-junit-path", str(tmp_path / "junit.xml")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Stateful" in done.stdout and "passed" in done.stdout, done.stdout[-3000:]
