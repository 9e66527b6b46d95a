"""JSON columns against hostile values (issue 11), on real SQLite files.

Writes: NaN/Infinity and values nested deeper than MAX_JSON_DEPTH are refused (InvalidValue),
except a finished execution's value, which is kept without its `json` (`json_omitted` says
why); lone surrogates (a JavaScript string can hold one) are kept exactly. Reads: a row never
fails to read whatever depth or NaN an older writer left in it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store import MAX_JSON_DEPTH, VALUE_COLUMN_DEPTH, InvalidValue, NewEvent, Store


def nested_list(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def deep_value(depth: int) -> Any:
    """`depth` nested lists, built iteratively (json.loads would recurse)."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_the_depth_limit_is_64() -> None:
    assert MAX_JSON_DEPTH == 64  # the documented contract (docs/api.md, issue 11)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), [1.0, float("nan")]])
def test_non_finite_numbers_are_refused(store: Store, session, bad: Any) -> None:
    with pytest.raises(InvalidValue):
        store.create_execution("run_file", session_id=session.id, path="a.js", args={"a": bad})
    with pytest.raises(InvalidValue):
        store.add_capability(session.template_id, "net", "n", config={"a": bad})
    assert store.list_executions(session.id) == []
    assert store.list_capabilities(session.template_id) == []


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, 600, 5000])
def test_columns_deeper_than_the_limit_are_refused(store: Store, session, depth: int) -> None:
    # {"a": [[...]]}: the dict is one level
    with pytest.raises(InvalidValue, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        store.create_execution("run_file", session_id=session.id, path="a.js", args={"a": deep_value(depth)})
    assert store.list_executions(session.id) == []


def test_a_column_at_the_limit_is_kept(store: Store, session) -> None:
    args = {"a": deep_value(MAX_JSON_DEPTH - 1)}
    execution = store.create_execution("run_file", session_id=session.id, path="a.js", args=args)
    assert store.get_execution(execution.id).args == args


def _finish_with(store: Store, execution_id: str, value: dict[str, Any]):
    return store.finish_execution(execution_id, "ok", result=value,
                                  remaining_events=[NewEvent(1, "value", value)])


@pytest.mark.parametrize(("json_value", "reason"), [
    (deep_value(MAX_JSON_DEPTH + 1), f"it is nested deeper than {MAX_JSON_DEPTH} levels"),
    (deep_value(3000), f"it is nested deeper than {MAX_JSON_DEPTH} levels"),
    (float("nan"), "not representable as strict JSON"),
    ([float("inf")], "not representable as strict JSON"),
])
def test_a_value_that_cannot_be_stored_is_kept_without_its_json(store: Store, session, json_value: Any,
                                                                 reason: str) -> None:
    execution = store.create_execution("repl", session_id=session.id, input="x")
    value = {"type": "array", "preview": "[ [Array] ]", "json": json_value}
    finished = _finish_with(store, execution.id, value)
    expected = {"type": "array", "preview": "[ [Array] ]", "json_omitted": reason}
    assert finished.status == "ok"
    assert finished.result == expected
    assert store.get_execution(execution.id).result == expected
    assert store.list_events(execution.id)[-1].payload == expected


def test_a_value_at_the_limit_keeps_its_json(store: Store, session) -> None:
    """The engine gives a value's `json` up to MAX_JSON_DEPTH levels: all of it is stored (the
    description around it is one more level of its column)."""
    execution = store.create_execution("repl", session_id=session.id, input="x")
    value = {"type": "array", "preview": "[ [Array] ]", "json": deep_value(MAX_JSON_DEPTH)}
    assert _finish_with(store, execution.id, value).result == value
    assert store.get_execution(execution.id).result == value
    assert store.list_events(execution.id)[-1].payload == value


@pytest.mark.parametrize("text", ["\ud800", "a\udc00b", "\udfff\ud800", "ok \U0001f600 \ud83d"])
def test_lone_surrogates_are_kept_exactly(store: Store, session, db_path: Path, text: str) -> None:
    execution = store.create_execution("run_file", session_id=session.id, path="a.js",
                                       args={text: text}, env={"E": [text]})
    value = {"type": "string", "preview": "'?'", "json": text}
    _finish_with(store, execution.id, value)
    again = store.get_execution(execution.id)
    assert again.args == {text: text} and again.env == {"E": [text]}
    assert again.result == value
    assert store.list_events(execution.id)[-1].payload == value
    # and the file holds UTF-8 text (the surrogate as a \u escape), readable by any SQLite client
    conn = sqlite3.connect(db_path)
    try:
        (stored,) = conn.execute("SELECT args FROM executions WHERE id = ?", (execution.id,)).fetchone()
    finally:
        conn.close()
    assert json.loads(stored) == {text: text}


def test_non_ascii_text_stays_unescaped(store: Store, session, db_path: Path) -> None:
    execution = store.create_execution("run_file", session_id=session.id, path="a.js", args={"é": "日本"})
    conn = sqlite3.connect(db_path)
    try:
        (stored,) = conn.execute("SELECT args FROM executions WHERE id = ?", (execution.id,)).fetchone()
    finally:
        conn.close()
    assert stored == '{"é":"日本"}'


# ----- rows an older writer left ------------------------------------------------------------------


def _write(db_path: Path, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


# Reading allows VALUE_COLUMN_DEPTH (65: a value's 64-level json inside its description);
# 66 is the first depth no current writer makes.
@pytest.mark.parametrize("depth", [VALUE_COLUMN_DEPTH + 1, 600, 5000, 100_000])
def test_rows_of_any_depth_read(store: Store, session, db_path: Path, depth: int) -> None:
    execution = store.create_execution("repl", session_id=session.id, input="x")
    _finish_with(store, execution.id, {"type": "number", "preview": "1", "json": 1})
    cap = store.add_capability(session.template_id, "net", "n")
    deep = nested_list(depth)
    value = '{"type":"array","preview":"[ [Array] ]","json":' + deep + "}"
    _write(db_path, "UPDATE executions SET result = ?, args = ?, env = ?, metrics = ? WHERE id = ?",
           value, '{"a":' + deep + "}", deep, deep, execution.id)
    _write(db_path, "UPDATE events SET payload = ? WHERE execution_id = ?", value, execution.id)
    _write(db_path, "UPDATE capabilities SET config = ? WHERE id = ?", '{"c":' + deep + "}", cap.id)
    _write(db_path, "UPDATE template_settings SET limits = ? WHERE template_id = ?", '{"l":' + deep + "}",
           session.template_id)
    _write(db_path, "UPDATE sessions SET settings = ? WHERE id = ?", deep, session.id)

    omitted = {"json_omitted": f"it is nested deeper than {MAX_JSON_DEPTH} levels"}
    got = store.get_execution(execution.id)
    if depth < 1000:  # parsed: the value keeps its type and preview
        assert got.result == {"type": "array", "preview": "[ [Array] ]", **omitted}
    else:  # deeper than any recursive parser goes: only the reason is left
        assert got.result == omitted
    assert got.args == omitted and got.env == omitted and got.metrics == omitted
    assert store.list_executions(session.id)[0] == got
    assert store.list_events(execution.id)[-1].payload == got.result
    assert store.list_capabilities(session.template_id)[0].config == omitted
    assert store.get_settings(session.template_id).limits == omitted
    assert store.get_template_detail(session.template_id).capabilities[0].config == omitted
    assert store.get_session(session.id).settings == omitted


def test_nan_an_older_writer_left_reads_as_null(store: Store, session, db_path: Path) -> None:
    execution = store.create_execution("run_file", session_id=session.id, path="a.js", args={"a": 1})
    _write(db_path, "UPDATE executions SET args = ? WHERE id = ?",
           '{"a":NaN,"b":Infinity,"c":[-Infinity,1.5]}', execution.id)
    assert store.get_execution(execution.id).args == {"a": None, "b": None, "c": [None, 1.5]}
