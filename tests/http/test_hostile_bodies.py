"""Hostile request bodies and hostile script values, against the real daemon (issue 11).

The contract these tests hold:
* a request body must be strict JSON: not valid UTF-8, not JSON, NaN / Infinity / -Infinity
  or a number overflowing to infinity (1e999), nesting deeper than 64 levels, or a string
  (key or value) holding a lone surrogate escape (`"\\ud800"`) → 400 INVALID_REQUEST, on
  every route that takes a body, before anything is stored; a surrogate's message and
  `details.field` name the field;
* nothing a script returns makes a row unservable: a value nested deeper than the store's
  64 levels is kept without its `json`, with `json_omitted` saying why; a lone surrogate a
  script produced is stored and served faithfully (a `\\ud800` escape);
* every response is strict JSON, and every read route of a session keeps answering 200.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_daemon import Daemon, check_envelope, error_of, new_session, new_template, unique
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strict_json import nested_list, read_all, strict_client

MAX_DEPTH = 64  # the documented limit (store.MAX_JSON_DEPTH), written down again here
JSON = {"content-type": "application/json"}
CONTRACT_4XX = {400, 404, 409, 413, 422}


@pytest.fixture(scope="module")
def client(daemon: Daemon) -> Iterator[httpx.Client]:
    with strict_client(daemon.api) as c:
        yield c


@pytest.fixture(scope="module")
def tpl(client: httpx.Client) -> dict[str, Any]:
    return new_template(client)


@pytest.fixture(scope="module")
def sess(client: httpx.Client, tpl: dict[str, Any], worktree: Path) -> dict[str, Any]:
    return new_session(client, tpl["id"], worktree)


# Every route that takes a body, with a slot (@) where a hostile JSON value goes, and the
# field the slot is.
SLOTTED = [
    ("POST", "/templates", '{"name": @}', "name"),
    ("PATCH", "/templates/{tpl}/settings", '{"limits": {"cpu_ms": @}}', "limits.cpu_ms"),
    ("PATCH", "/templates/{tpl}/settings", '{"resolver": {"roots": [@]}}', "resolver.roots.0"),
    ("POST", "/templates/{tpl}/capabilities",
     '{"kind": "exec", "name": "{unique}", "enabled": false, "config": {"env": {"V": @}}}', "config.env.V"),
    ("POST", "/templates/{tpl}/startup-files", '{"path": @}', "path"),
    ("POST", "/templates/{tpl}/modules", '{"name": @}', "name"),
    ("POST", "/templates/{tpl}/libraries", '{"name": @}', "name"),
    ("POST", "/sessions", '{"template_id": "{tpl}", "workspace_id": @, "base_commit_oid": "c", '
                          '"worktree_path": "{wt}"}', "workspace_id"),
    ("POST", "/executions/repl", '{"session_id": "{sess}", "input": @}', "input"),
    ("POST", "/executions/run-file", '{"session_id": "{sess}", "path": "main.js", "args": {"a": @}}', "args.a"),
    ("POST", "/executions/run-file", '{"session_id": "{sess}", "path": "main.js", "env": {"E": @}}', "env.E"),
    ("POST", "/run", '{"code": "1", "limits": {"cpu_ms": @}}', "limits.cpu_ms"),
]

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "[1, NaN]"]
SURROGATES = ['"x\\ud800"', '"\\udc00"', '"ok \\ud83d"', '"\\udfff\\ud800"']
DEEP = {"65": nested_list(MAX_DEPTH), "600": nested_list(600), "100000": nested_list(100_000)}
BAD_UTF8 = [b'"\xff"', b'"\xed\xa0\x80"', b'"\xc3"', b'"\xf4\x90\x80\x80"']


def _fill(template: str, ctx: dict[str, str]) -> str:
    for key, value in ctx.items():
        template = template.replace("{" + key + "}", value)
    return template


@pytest.fixture
def ctx(tpl: dict[str, Any], sess: dict[str, Any], worktree: Path) -> dict[str, str]:
    return {"tpl": tpl["id"], "sess": sess["id"], "wt": str(worktree), "unique": unique()}


def _send(client: httpx.Client, method: str, route: str, body: str, poison: bytes,
          ctx: dict[str, str]) -> httpx.Response:
    head, _, tail = _fill(body, ctx).partition("@")
    return client.request(method, _fill(route, ctx), content=head.encode() + poison + tail.encode(),
                          headers=JSON)


def _executions(client: httpx.Client, session_id: str) -> list[str]:
    r = client.get("/executions", params={"session_id": session_id, "limit": 1000})
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()]


ROUTE_IDS = [f"{m} {r} {f}" for m, r, _, f in SLOTTED]


@pytest.mark.parametrize("poison", NON_FINITE)
@pytest.mark.parametrize(("method", "route", "body", "field"), SLOTTED, ids=ROUTE_IDS)
def test_non_finite_numbers_are_invalid_requests(client: httpx.Client, ctx: dict[str, str], sess: dict[str, Any],
                                                 method: str, route: str, body: str, field: str,
                                                 poison: str) -> None:
    before = _executions(client, sess["id"])
    error = error_of(_send(client, method, route, body, poison.encode(), ctx), 400, "INVALID_REQUEST")
    assert "JSON" in error["message"], error
    assert _executions(client, sess["id"]) == before  # refused before anything was stored


@pytest.mark.parametrize("poison", SURROGATES)
@pytest.mark.parametrize(("method", "route", "body", "field"), SLOTTED, ids=ROUTE_IDS)
def test_lone_surrogates_are_invalid_requests_naming_the_field(
        client: httpx.Client, ctx: dict[str, str], method: str, route: str, body: str, field: str,
        poison: str) -> None:
    error = error_of(_send(client, method, route, body, poison.encode(), ctx), 400, "INVALID_REQUEST")
    assert error["details"]["field"] == field, error
    assert error["message"].startswith(f"{field}: a lone surrogate"), error


@pytest.mark.parametrize(("method", "route", "body", "field"), SLOTTED, ids=ROUTE_IDS)
def test_lone_surrogates_in_keys_are_invalid_requests(client: httpx.Client, ctx: dict[str, str], method: str,
                                                      route: str, body: str, field: str) -> None:
    error = error_of(_send(client, method, route, body, b'{"k\\ud800": 1}', ctx), 400, "INVALID_REQUEST")
    # The field is named with the surrogate escaped: the envelope itself stays Unicode text.
    assert error["details"]["field"] == f"{field}.k\\ud800", error
    # a surrogate key at the top level of the body
    head = _fill(body, ctx).partition("@")[0]
    if head.startswith("{"):
        raw = b'{"\\udbff": 1, ' + _fill(body, ctx)[1:].replace("@", "1").encode()
        error = error_of(client.request(method, _fill(route, ctx), content=raw, headers=JSON), 400,
                         "INVALID_REQUEST")
        assert error["details"]["field"] == "\\udbff", error


@pytest.mark.parametrize("poison", BAD_UTF8, ids=[p.hex() for p in BAD_UTF8])
@pytest.mark.parametrize(("method", "route", "body", "field"), SLOTTED, ids=ROUTE_IDS)
def test_invalid_utf8_is_an_invalid_request(client: httpx.Client, ctx: dict[str, str], method: str, route: str,
                                            body: str, field: str, poison: bytes) -> None:
    error = error_of(_send(client, method, route, body, poison, ctx), 400, "INVALID_REQUEST")
    assert "UTF-8" in error["message"], error


@pytest.mark.parametrize("depth", sorted(DEEP))
@pytest.mark.parametrize(("method", "route", "body", "field"), SLOTTED, ids=ROUTE_IDS)
def test_bodies_deeper_than_the_limit_are_invalid_requests(
        client: httpx.Client, ctx: dict[str, str], sess: dict[str, Any], method: str, route: str, body: str,
        field: str, depth: str) -> None:
    before = _executions(client, sess["id"])
    error = error_of(_send(client, method, route, body, DEEP[depth].encode(), ctx), 400, "INVALID_REQUEST")
    assert error["message"] == f"the request body is nested deeper than {MAX_DEPTH} levels", error
    assert error["details"]["max_depth"] == MAX_DEPTH
    assert _executions(client, sess["id"]) == before


def test_a_body_at_the_depth_limit_is_accepted_and_its_args_served(client: httpx.Client,
                                                                    sess: dict[str, Any]) -> None:
    # {"session_id", "path", "args": {"a": [[...]]}}: the body 1 level, args 1, then 62 lists.
    args = '{"a": ' + nested_list(MAX_DEPTH - 2, '"leaf"') + "}"
    raw = json.dumps({"session_id": sess["id"], "path": "main.js", "args": "@"}).replace('"@"', args)
    r = client.post("/executions/run-file", content=raw.encode(), headers=JSON)
    assert r.status_code == 201, r.text
    execution = r.json()
    assert execution["status"] == "ok", execution
    assert execution["args"] == json.loads(args)
    # one more level: refused
    raw = json.dumps({"session_id": sess["id"], "path": "main.js", "args": {"a": "@"}}).replace(
        '"@"', nested_list(MAX_DEPTH - 1, '"leaf"'))
    error_of(client.post("/executions/run-file", content=raw.encode(), headers=JSON), 400, "INVALID_REQUEST")
    read_all(client, sess["id"])


def test_huge_integers_answer_contract_errors(client: httpx.Client, tpl: dict[str, Any],
                                              sess: dict[str, Any]) -> None:
    """Integers beyond SQLite's 64 bits, where they would reach a column or a query."""
    error_of(client.post(f"/templates/{tpl['id']}/startup-files", json={"path": "main.js", "order_index": 2**63}),
             400, "VALIDATION_ERROR")
    error_of(client.post(f"/templates/{tpl['id']}/startup-files",
                         json={"path": "main.js", "order_index": -(2**63) - 1}), 400, "VALIDATION_ERROR")
    # More digits than Python converts: not valid JSON for it.
    raw = '{"path": "main.js", "order_index": 1%s}' % ("0" * 5000)
    error_of(client.post(f"/templates/{tpl['id']}/startup-files", content=raw.encode(), headers=JSON),
             400, "INVALID_REQUEST")
    execution = client.post("/executions/repl", json={"session_id": sess["id"], "input": "1"}).json()
    error_of(client.get(f"/executions/{execution['id']}/events", params={"after_seq": 2**63}),
             400, "VALIDATION_ERROR")
    r = client.get(f"/executions/{execution['id']}/events", params={"after_seq": 2**63 - 1})
    assert r.status_code == 200 and r.json() == []
    # too large for SQLite; "²" and "¹²" in Latin-1 (how headers are read): str.isdigit says
    # digits, int() refuses them
    for last in (str(10**30).encode(), b"\xb2", b"\xb9\xb2"):
        with client.stream("GET", f"/executions/{execution['id']}/events/stream",
                           headers={"Last-Event-ID": last}) as stream:
            assert stream.status_code == 200
            stream.read()
    error_of(client.get("/executions", params={"session_id": sess["id"], "limit": 10**30}), 400,
             "VALIDATION_ERROR")


@pytest.mark.parametrize("raw", ["%ED%A0%80", "%ED%B0%80x", "%FF", "%C3", "a%00b"])
def test_surrogate_and_invalid_utf8_in_paths_and_queries(client: httpx.Client, tpl: dict[str, Any],
                                                         sess: dict[str, Any], raw: str) -> None:
    """Percent-encoded surrogates and bytes that are not UTF-8, in path and query parameters:
    a contract error (they decode to U+FFFD, never to a lone surrogate), never 500."""
    urls = [
        ("GET", f"/templates/{raw}"), ("GET", f"/sessions/{raw}"), ("GET", f"/executions/{raw}"),
        ("GET", f"/executions/{raw}/events"), ("DELETE", f"/templates/{tpl['id']}/modules/{raw}"),
        ("DELETE", f"/templates/{tpl['id']}/libraries/{raw}"),
        ("DELETE", f"/templates/{tpl['id']}/capabilities/{raw}"),
        ("GET", f"/sessions?status={raw}"), ("GET", f"/executions?session_id={raw}"),
        ("GET", f"/executions?session_id={sess['id']}&limit={raw}"),
    ]
    for method, url in urls:
        r = client.request(method, url)
        assert r.status_code in CONTRACT_4XX, (url, r.status_code, r.text)
        check_envelope(r)


# ----- what scripts return ------------------------------------------------------------------------


def _deep_object(depth: int) -> str:
    return f"var o = {{}}; for (let i = 0; i < {depth}; i++) o = {{o}}; o"


@pytest.mark.parametrize("depth", [600, 2000])
def test_deep_script_values_leave_the_session_readable(client: httpx.Client, tpl: dict[str, Any],
                                                       worktree: Path, depth: int) -> None:
    session = new_session(client, tpl["id"], worktree)
    r = client.post("/executions/repl", json={"session_id": session["id"], "input": _deep_object(depth)})
    assert r.status_code == 201, r.text
    execution = r.json()
    if depth == 600:  # the engine describes it; 2000 depends on the engine's own depth guard
        assert execution["status"] == "ok", execution
    if execution["status"] == "ok":
        result = execution["result"]
        assert result["type"] == "object" and "json" not in result, result
        assert set(result) - {"type", "preview"}, "the result says why its json is absent"
    assert client.post("/executions/repl", json={"session_id": session["id"], "input": "6 * 7"}).json()[
        "result"]["json"] == 42
    executions = read_all(client, session["id"])
    assert execution["id"] in [e["id"] for e in executions]
    served = client.get(f"/executions/{execution['id']}").json()
    assert served == execution


def test_a_value_at_the_depth_limit_keeps_its_json(client: httpx.Client, sess: dict[str, Any]) -> None:
    """A value whose json nests exactly 64 levels is kept whole by the engine and the store, in
    the execution and its value event; one level more and both leave it out for the same
    stated reason."""
    def nested(levels: int) -> str:
        return f"var a = 1; for (let i = 0; i < {levels}; i++) a = [a]; a"

    kept = client.post("/executions/repl", json={"session_id": sess["id"], "input": nested(MAX_DEPTH)}).json()
    assert kept["result"]["json"] == json.loads(nested_list(MAX_DEPTH)), kept["result"]
    events = client.get(f"/executions/{kept['id']}/events").json()
    assert events[-1]["type"] == "value" and events[-1]["payload"] == kept["result"]
    cut = client.post("/executions/repl", json={"session_id": sess["id"], "input": nested(MAX_DEPTH + 1)}).json()
    assert cut["result"] == {"type": "array", "preview": "[ [ [ [Array] ] ] ]",
                             "json_omitted": f"it is nested deeper than {MAX_DEPTH} levels"}, cut["result"]
    events = client.get(f"/executions/{cut['id']}/events").json()
    assert events[-1]["type"] == "value" and events[-1]["payload"] == cut["result"]


@pytest.mark.parametrize(("code", "expected"), [
    ("'\\ud800'", "\ud800"),
    ("'a\\udc00b'", "a\udc00b"),
    ("({['k\\ud800']: '\\udfff'})", {"k\ud800": "\udfff"}),
    ("['\\ud83d', '\\ude00']", ["\ud83d", "\ude00"]),
])
def test_lone_surrogates_from_scripts_are_stored_and_served_faithfully(
        client: httpx.Client, tpl: dict[str, Any], worktree: Path, code: str, expected: Any) -> None:
    session = new_session(client, tpl["id"], worktree)
    r = client.post("/executions/repl", json={"session_id": session["id"], "input": code})
    assert r.status_code == 201, r.text
    execution = r.json()
    assert execution["status"] == "ok", execution
    # What JSON.parse makes of the served text: the same UTF-16 code units JavaScript had.
    assert execution["result"]["json"] == expected
    assert client.get(f"/executions/{execution['id']}").json()["result"]["json"] == expected
    # the session is not left busy: the next execution runs
    assert client.post("/executions/repl", json={"session_id": session["id"], "input": "1"}).json()["status"] == "ok"
    read_all(client, session["id"])


def test_a_script_logging_and_throwing_lone_surrogates(client: httpx.Client, sess: dict[str, Any]) -> None:
    r = client.post("/executions/repl", json={"session_id": sess["id"],
                                              "input": "console.log('\\ud800'); throw new Error('\\udc00')"})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "error"
    read_all(client, sess["id"])


# ----- properties ---------------------------------------------------------------------------------

_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53),
    st.floats(allow_nan=True, allow_infinity=True),
    # every code point, lone surrogates included (category Cs)
    st.text(st.characters(codec=None, exclude_categories=()), max_size=8),
)
_VALUES = st.recursive(_LEAF, lambda children: st.one_of(
    st.lists(children, max_size=3),
    st.dictionaries(st.text(st.characters(codec=None, exclude_categories=()), max_size=4), children, max_size=3)),
    max_leaves=12)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _text(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _strict_and_text(value: Any) -> bool:
    """Whether the value has only finite numbers and strings (keys too) of Unicode text."""
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        return all(_strict_and_text(v) for v in value)
    if isinstance(value, dict):
        return all(_text(k) and _strict_and_text(v) for k, v in value.items())
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(value=_VALUES, extra_depth=st.sampled_from([0, 0, 0, 30, 61, 62, 63, 200, 1500]),
       slot=st.sampled_from(["args", "env"]))
def test_any_json_ish_body_gets_a_contract_answer(client: httpx.Client, tpl: dict[str, Any],
                                                  sess: dict[str, Any], value: Any, extra_depth: int,
                                                  slot: str) -> None:
    """Arbitrary values (NaN, infinities, lone surrogates, deep nesting) in the free-form
    fields: 201 exactly when the body is strict JSON within the depth limit, else 400
    INVALID_REQUEST; never 500, and the reads keep answering strict JSON."""
    # allow_nan writes NaN/Infinity; ensure_ascii writes a lone surrogate as its \u escape.
    # The nesting is added as text: no recursive encoder or oracle walks 1,500 levels.
    inner = json.dumps(value, allow_nan=True, ensure_ascii=True)
    encoded = '{"v": ' + "[" * extra_depth + inner + "]" * extra_depth + "}"
    # (A capability's config is no free-form field: its values are checked, INVALID_CAPABILITY.)
    url, body = "/executions/run-file", {"session_id": sess["id"], "path": "main.js", slot: "@"}
    raw = json.dumps(body).replace('"@"', encoded)
    r = client.post(url, content=raw.encode(), headers=JSON)
    # What a JSON parser reads (a surrogate pair written as two escapes is one character).
    parsed = json.loads(inner)
    # the body, the {"v": ...} object, the added lists, the value
    acceptable = _strict_and_text(parsed) and 2 + extra_depth + _depth(parsed) <= MAX_DEPTH
    if acceptable:
        assert r.status_code == 201, r.text
        served = r.json()[slot]
        for _ in range(extra_depth):
            served["v"] = served["v"][0]
        assert served == {"v": parsed}
    else:
        error_of(r, 400, "INVALID_REQUEST")
    r = client.get(f"/templates/{tpl['id']}")
    assert r.status_code == 200
    read_all(client, sess["id"], walk=2)
