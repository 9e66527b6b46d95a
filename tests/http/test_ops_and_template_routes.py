"""The ops and template routes of docs/api.md (settings, capabilities, startup files, modules,
libraries) and their error codes, against a real daemon over loopback.

The `api` client checks the cross-cutting rules on every response it sees (X-Request-Id, the
error envelope and its code → status table, RFC 3339 times): see http_daemon.check_response.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_daemon import (
    Daemon,
    check_envelope,
    error_of,
    new_session,
    new_template,
    repl,
    unique,
)
from route_checks import (
    DEFAULT_SETTINGS,
    NIL,
    TEMPLATE_FIELDS,
)

# ================================================================================================
# ops
# ================================================================================================


def test_health(api: httpx.Client) -> None:
    r = api.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_runtime_summary_lists_live_sessions(api: httpx.Client, sess: dict[str, Any]) -> None:
    body = api.get("/runtime/summary").json()
    assert isinstance(body["active_sessions"], int)
    assert sess["id"] in body["active_session_ids"]
    assert body["active_sessions"] == len(body["active_session_ids"])
    assert any("memory" in key for key in body), body


def test_runtime_summary_has_worker_figures(api: httpx.Client) -> None:
    """docs/api.md: "plus worker and memory figures"."""
    body = api.get("/runtime/summary").json()
    assert any("worker" in key for key in body), f"no worker figure in {sorted(body)}"


# ================================================================================================
# templates
# ================================================================================================


def test_template_crud(api: httpx.Client) -> None:
    name = unique("crud")
    r = api.post("/templates", json={"name": name})
    assert r.status_code == 201
    template = r.json()
    assert set(template) >= TEMPLATE_FIELDS
    assert template["name"] == name and template["engine"] == "quickjs"
    uuid.UUID(template["id"])

    assert template["id"] in [t["id"] for t in api.get("/templates").json()]

    detail = api.get(f"/templates/{template['id']}").json()
    assert set(detail) >= {"template", "settings", "capabilities", "startup_files", "modules", "libraries"}
    assert detail["template"]["id"] == template["id"]
    for key in ("limits", "runtime", "resolver"):
        assert detail["settings"][key] == DEFAULT_SETTINGS[key]
    for key in ("capabilities", "startup_files", "modules", "libraries"):
        assert detail[key] == []

    r = api.delete(f"/templates/{template['id']}")
    assert r.status_code == 200
    error_of(api.get(f"/templates/{template['id']}"), 404, "TEMPLATE_NOT_FOUND")
    error_of(api.delete(f"/templates/{template['id']}"), 404, "TEMPLATE_NOT_FOUND")
    assert template["id"] not in [t["id"] for t in api.get("/templates").json()]


def test_template_explicit_engine_quickjs(api: httpx.Client) -> None:
    r = api.post("/templates", json={"name": unique(), "engine": "quickjs"})
    assert r.status_code == 201 and r.json()["engine"] == "quickjs"


def test_template_other_engine_is_422(api: httpx.Client) -> None:
    r = api.post("/templates", json={"name": unique(), "engine": "v8"})
    assert r.status_code == 422
    check_envelope(r)


def test_template_duplicate_name_is_409(api: httpx.Client) -> None:
    name = unique("dup")
    assert api.post("/templates", json={"name": name}).status_code == 201
    error_of(api.post("/templates", json={"name": name}), 409, "TEMPLATE_EXISTS")


def test_template_empty_name_is_validation_error(api: httpx.Client) -> None:
    error_of(api.post("/templates", json={"name": "  "}), 400, "VALIDATION_ERROR")


def test_template_delete_leaves_live_sessions_alone(api: httpx.Client, worktree: Path) -> None:
    template = new_template(api)
    session = new_session(api, template["id"], worktree)
    repl(api, session["id"], "globalThis.kept = 'still here'")
    assert api.delete(f"/templates/{template['id']}").status_code == 200
    execution = repl(api, session["id"], "kept")
    assert execution["status"] == "ok" and execution["result"]["json"] == "still here"
    assert api.get(f"/sessions/{session['id']}").json()["status"] == "ready"


# ----- settings ---------------------------------------------------------------------------------


def test_settings_defaults(api: httpx.Client, tpl: dict[str, Any]) -> None:
    r = api.get(f"/templates/{tpl['id']}/settings")
    assert r.status_code == 200
    body = r.json()
    assert body["template_id"] == tpl["id"]
    for key, value in DEFAULT_SETTINGS.items():
        assert body[key] == value


def test_settings_patch_is_partial(api: httpx.Client) -> None:
    template = new_template(api)
    r = api.patch(f"/templates/{template['id']}/settings",
                  json={"limits": {"wall_ms": 1234}, "runtime": {"strict": False},
                        "resolver": {"extensions": [".js"]}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["limits"] == {**DEFAULT_SETTINGS["limits"], "wall_ms": 1234}
    assert body["runtime"] == {**DEFAULT_SETTINGS["runtime"], "strict": False}
    assert body["resolver"] == {**DEFAULT_SETTINGS["resolver"], "extensions": [".js"]}
    # a second patch keeps the first
    body = api.patch(f"/templates/{template['id']}/settings", json={"limits": {"cpu_ms": 999}}).json()
    assert body["limits"]["wall_ms"] == 1234 and body["limits"]["cpu_ms"] == 999
    assert api.get(f"/templates/{template['id']}/settings").json() == body
    # an empty patch changes nothing; 0 means "the daemon's ceiling" and is accepted
    assert api.patch(f"/templates/{template['id']}/settings", json={}).json() == body
    r = api.patch(f"/templates/{template['id']}/settings", json={"limits": {"mem_mb": 0}})
    assert r.status_code == 200 and r.json()["limits"]["mem_mb"] == 0


@pytest.mark.parametrize(("patch", "code"), [
    # docs/api.md: unknown fields and wrong types in a request body → INVALID_REQUEST ...
    ({"bogus": {}}, "INVALID_REQUEST"),
    ({"limits": 5}, "INVALID_REQUEST"),
    ({"limits": {"bogus": 1}}, "INVALID_REQUEST"),
    ({"limits": {"cpu_ms": "5"}}, "INVALID_REQUEST"),
    ({"limits": {"cpu_ms": True}}, "INVALID_REQUEST"),
    ({"runtime": {"esm": "yes"}}, "INVALID_REQUEST"),
    ({"resolver": {"roots": "."}}, "INVALID_REQUEST"),
    # ... and an invalid value → VALIDATION_ERROR.
    ({"limits": {"cpu_ms": 10**9}}, "VALIDATION_ERROR"),
    ({"limits": {"wall_ms": 10**9}}, "VALIDATION_ERROR"),
    ({"limits": {"mem_mb": 10**6}}, "VALIDATION_ERROR"),
    ({"limits": {"max_events": 10**12}}, "VALIDATION_ERROR"),
    ({"limits": {"max_output_kb": 10**12}}, "VALIDATION_ERROR"),
    ({"limits": {"cpu_ms": -1}}, "VALIDATION_ERROR"),
    ({"limits": {"mem_mb": 1}}, "VALIDATION_ERROR"),
    ({"resolver": {"extensions": ["js"]}}, "VALIDATION_ERROR"),
    ({"resolver": {"roots": ["../up"]}}, "VALIDATION_ERROR"),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else v)
def test_settings_patch_validation(api: httpx.Client, tpl: dict[str, Any], patch: dict[str, Any],
                                   code: str) -> None:
    before = api.get(f"/templates/{tpl['id']}/settings").json()
    error_of(api.patch(f"/templates/{tpl['id']}/settings", json=patch), 400, code)
    assert api.get(f"/templates/{tpl['id']}/settings").json() == before


def test_settings_of_unknown_template(api: httpx.Client) -> None:
    error_of(api.get(f"/templates/{NIL}/settings"), 404, "TEMPLATE_NOT_FOUND")
    error_of(api.patch(f"/templates/{NIL}/settings", json={}), 404, "TEMPLATE_NOT_FOUND")
    error_of(api.patch(f"/templates/{NIL}/settings", json={"limits": {"wall_ms": 10}}), 404,
             "TEMPLATE_NOT_FOUND")


# ----- sub-resources ----------------------------------------------------------------------------


def test_capabilities(api: httpx.Client) -> None:
    template = new_template(api)
    base = f"/templates/{template['id']}/capabilities"
    assert api.get(base).json() == []
    r = api.post(base, json={"kind": "fetch", "name": "api", "config": {"origins": ["https://example.org"]}})
    assert r.status_code == 201, r.text
    cap = r.json()
    assert cap["kind"] == "fetch" and cap["name"] == "api" and cap["enabled"] is True
    assert cap["config"]["origins"] == [{"origin": "https://example.org", "headers": {}}]
    assert cap["config"]["max_requests"] == 100 and cap["template_id"] == template["id"]
    r = api.post(base, json={"kind": "fs", "name": "read", "enabled": False})
    assert r.status_code == 201 and r.json()["enabled"] is False and r.json()["config"]["write"] is False
    listed = api.get(base).json()
    assert {c["id"] for c in listed} == {cap["id"], r.json()["id"]}
    assert {c["id"] for c in api.get(f"/templates/{template['id']}").json()["capabilities"]} == \
        {c["id"] for c in listed}
    assert api.delete(f"{base}/{cap['id']}").status_code == 200
    assert [c["id"] for c in api.get(base).json()] == [r.json()["id"]]
    r404 = api.delete(f"{base}/{cap['id']}")
    assert r404.status_code == 404
    error_of(api.post(base, json={"kind": "", "name": "x"}), 400, "VALIDATION_ERROR")


def test_startup_files(api: httpx.Client) -> None:
    template = new_template(api)
    base = f"/templates/{template['id']}/startup-files"
    assert api.get(base).json() == []
    r = api.post(base, json={"path": "./sub/../main.js"})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["order_index"] == 0 and first["mode"] == "eval" and first["path"] == "main.js"
    r = api.post(base, json={"path": "sub/inner.js", "order_index": 3, "mode": "eval"})
    assert r.status_code == 201 and r.json()["order_index"] == 3
    assert {s["id"] for s in api.get(base).json()} == {first["id"], r.json()["id"]}
    assert api.delete(f"{base}/{first['id']}").status_code == 200
    assert [s["id"] for s in api.get(base).json()] == [r.json()["id"]]
    assert api.delete(f"{base}/{first['id']}").status_code == 404


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "sub/../../x.js", "..", "."])
def test_startup_file_bad_path_is_invalid_path(api: httpx.Client, tpl: dict[str, Any], path: str) -> None:
    error_of(api.post(f"/templates/{tpl['id']}/startup-files", json={"path": path}), 422, "INVALID_PATH")


def test_startup_file_mode_other_than_eval(api: httpx.Client, tpl: dict[str, Any]) -> None:
    r = api.post(f"/templates/{tpl['id']}/startup-files", json={"path": "main.js", "mode": "module"})
    error_of(r, 422, "STARTUP_MODE_UNSUPPORTED")


def test_modules(api: httpx.Client) -> None:
    template = new_template(api)
    base = f"/templates/{template['id']}/modules"
    assert api.get(base).json() == []
    r = api.post(base, json={"name": "fs"})
    assert r.status_code == 201 and r.json()["name"] == "fs"
    assert api.post(base, json={"name": "fs"}).status_code == 409
    assert [m["name"] for m in api.get(base).json()] == ["fs"]
    assert [m["name"] for m in api.get(f"/templates/{template['id']}").json()["modules"]] == ["fs"]
    assert api.delete(f"{base}/fs").status_code == 200
    assert api.get(base).json() == []
    assert api.delete(f"{base}/fs").status_code == 404


@pytest.mark.parametrize("name", ["json", "math", "console", "leftpad", "crypto", "util"])
def test_module_not_allowed(api: httpx.Client, tpl: dict[str, Any], name: str) -> None:
    error_of(api.post(f"/templates/{tpl['id']}/modules", json={"name": name}), 422, "MODULE_NOT_ALLOWED")


def test_libraries(api: httpx.Client, worktree: Path) -> None:
    template = new_template(api)
    base = f"/templates/{template['id']}/libraries"
    assert api.get(base).json() == []
    r = api.post(base, json={"name": "greet@1.0.0"})
    assert r.status_code == 201 and r.json()["name"] == "greet@1.0.0"
    assert api.post(base, json={"name": "greet@1.0.0"}).status_code == 409
    assert [x["name"] for x in api.get(base).json()] == ["greet@1.0.0"]
    # a session of the template has the library loaded
    session = new_session(api, template["id"], worktree)
    execution = repl(api, session["id"], "greet('world')")
    assert execution["result"]["json"] == "hello world"
    assert api.delete(f"{base}/greet@1.0.0").status_code == 200
    assert api.get(base).json() == []
    assert api.delete(f"{base}/greet@1.0.0").status_code == 404


def test_library_not_found_or_not_valid(api: httpx.Client, daemon: Daemon, tpl: dict[str, Any],
                                        tmp_path: Path) -> None:
    base = f"/templates/{tpl['id']}/libraries"
    error_of(api.post(base, json={"name": "missing@1.0.0"}), 422, "LIBRARY_NOT_FOUND")
    (daemon.libs / "binary@1.0.0.js").write_bytes(b"\xff\xfe\x00garbage")
    error_of(api.post(base, json={"name": "binary@1.0.0"}), 422, "LIBRARY_NOT_FOUND")
    (tmp_path / "evil.js").write_text("globalThis.evil = 1")
    (daemon.libs / "evil@1.0.0.js").symlink_to(tmp_path / "evil.js")
    error_of(api.post(base, json={"name": "evil@1.0.0"}), 422, "LIBRARY_NOT_FOUND")


SUB_RESOURCE_ROUTES = [
    ("GET", "/templates/{t}", None),
    ("DELETE", "/templates/{t}", None),
    ("GET", "/templates/{t}/settings", None),
    ("PATCH", "/templates/{t}/settings", {"limits": {"wall_ms": 100}}),
    ("GET", "/templates/{t}/capabilities", None),
    ("POST", "/templates/{t}/capabilities", {"kind": "fs", "name": "x"}),
    ("DELETE", f"/templates/{{t}}/capabilities/{NIL}", None),
    ("GET", "/templates/{t}/startup-files", None),
    ("POST", "/templates/{t}/startup-files", {"path": "main.js"}),
    ("DELETE", f"/templates/{{t}}/startup-files/{NIL}", None),
    ("GET", "/templates/{t}/modules", None),
    ("POST", "/templates/{t}/modules", {"name": "fs"}),
    ("DELETE", "/templates/{t}/modules/fs", None),
    ("GET", "/templates/{t}/libraries", None),
    ("POST", "/templates/{t}/libraries", {"name": "greet@1.0.0"}),
    ("DELETE", "/templates/{t}/libraries/greet@1.0.0", None),
]


@pytest.mark.parametrize(("method", "route", "body"), SUB_RESOURCE_ROUTES, ids=lambda v: str(v))
def test_unknown_template_is_404(api: httpx.Client, method: str, route: str, body: Any) -> None:
    r = api.request(method, route.format(t=NIL), json=body)
    error_of(r, 404, "TEMPLATE_NOT_FOUND")
