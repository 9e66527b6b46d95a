"""Templates, their settings and sub-resources: round trips, uniqueness, deletion."""

from __future__ import annotations

import uuid

import pytest

from store import (
    DEFAULT_RESOLVER,
    DEFAULT_RUNTIME,
    CapabilityExists,
    DuplicateId,
    InvalidValue,
    LibraryExists,
    ModuleExists,
    NewEvent,
    StartupFileExists,
    Store,
    TemplateExists,
    TemplateNotFound,
)
from supervisor.adapters.error_codes import api_code
from vocabulary import DEFAULT_LIMITS


def test_template_round_trip_with_default_settings(store: Store) -> None:
    created = store.create_template("alpha")
    assert uuid.UUID(created.id).version == 4
    assert created.engine == "quickjs"
    assert created.created_at.tzinfo is not None and created.created_at.utcoffset().total_seconds() == 0
    assert store.get_template(created.id) == created
    assert store.get_template_by_name("alpha") == created
    settings = store.get_settings(created.id)
    assert settings.limits == DEFAULT_LIMITS
    assert settings.runtime == DEFAULT_RUNTIME
    assert settings.resolver == DEFAULT_RESOLVER


def test_caller_settings_and_id_are_kept(store: Store) -> None:
    template_id = str(uuid.uuid4())
    limits = {"cpu_ms": 10, "wall_ms": 20, "mem_mb": 8, "max_events": 5, "max_output_kb": 1}
    created = store.create_template("beta", id=template_id, limits=limits)
    assert created.id == template_id
    settings = store.get_settings(template_id)
    assert settings.limits == limits
    assert settings.runtime == DEFAULT_RUNTIME  # sections not given get the defaults


def test_default_settings_are_not_shared_between_templates(store: Store) -> None:
    first = store.create_template("one")
    store.update_settings(first.id, limits={"cpu_ms": 1})
    second = store.create_template("two")
    assert store.get_settings(second.id).limits["cpu_ms"] == DEFAULT_LIMITS["cpu_ms"] == 2000


def test_duplicate_template_name_is_template_exists_409(store: Store) -> None:
    store.create_template("dup")
    with pytest.raises(TemplateExists) as raised:
        store.create_template("dup")
    assert api_code(raised.value) == "TEMPLATE_EXISTS"
    assert len(store.list_templates()) == 1


def test_duplicate_caller_id_is_a_typed_error(store: Store) -> None:
    template_id = str(uuid.uuid4())
    store.create_template("a", id=template_id)
    with pytest.raises(DuplicateId):
        store.create_template("b", id=template_id)


def test_ids_must_be_uuids(store: Store) -> None:
    with pytest.raises(InvalidValue) as raised:
        store.create_template("x", id="not-a-uuid")
    assert api_code(raised.value) == "VALIDATION_ERROR"
    with pytest.raises(InvalidValue):
        store.create_template("y", id=str(uuid.uuid4()).upper())


def test_list_templates_newest_first_even_within_one_microsecond(clocked_store: Store) -> None:
    # The clock does not move: order must come from the tie-break, not from luck.
    names = [f"t{i}" for i in range(5)]
    for name in names:
        clocked_store.create_template(name)
    assert [t.name for t in clocked_store.list_templates()] == names[::-1]


def test_unknown_template_is_template_not_found_404(store: Store) -> None:
    unknown = str(uuid.uuid4())
    for call in (
        lambda: store.get_template(unknown),
        lambda: store.get_settings(unknown),
        lambda: store.delete_template(unknown),
        lambda: store.update_settings(unknown, limits={"cpu_ms": 1}),
        lambda: store.add_capability(unknown, "fs", "read"),
        lambda: store.list_capabilities(unknown),
        lambda: store.add_startup_file(unknown, "a.js"),
        lambda: store.list_startup_files(unknown),
        lambda: store.add_module(unknown, "path"),
        lambda: store.list_modules(unknown),
        lambda: store.remove_module(unknown, "path"),
        lambda: store.add_library(unknown, "lodash"),
        lambda: store.list_libraries(unknown),
        lambda: store.get_template_detail(unknown),
    ):
        with pytest.raises(TemplateNotFound) as raised:
            call()
        assert api_code(raised.value) == "TEMPLATE_NOT_FOUND"


def test_update_settings_merges_each_section(store: Store) -> None:
    created = store.create_template("s")
    updated = store.update_settings(created.id, limits={"cpu_ms": 50}, runtime={"esm": False})
    assert updated.limits == {**DEFAULT_LIMITS, "cpu_ms": 50}
    assert updated.runtime == {**DEFAULT_RUNTIME, "esm": False}
    assert updated.resolver == DEFAULT_RESOLVER
    assert store.get_settings(created.id) == updated
    assert store.get_template(created.id).updated_at >= created.updated_at


def test_capabilities_round_trip_and_uniqueness(store: Store) -> None:
    t = store.create_template("caps")
    read = store.add_capability(t.id, "fs", "read", config={"root": "."})
    write = store.add_capability(t.id, "fs", "write", enabled=False)
    same_name_other_kind = store.add_capability(t.id, "net", "read")
    assert store.list_capabilities(t.id) == [read, write, same_name_other_kind]
    assert write.enabled is False and read.config == {"root": "."}
    with pytest.raises(CapabilityExists) as raised:
        store.add_capability(t.id, "fs", "read")
    assert api_code(raised.value) == "CAPABILITY_EXISTS"
    # Unique per template: another template may have the same capability.
    other = store.create_template("other")
    store.add_capability(other.id, "fs", "read")
    assert store.delete_capability(t.id, read.id) is True
    assert store.delete_capability(t.id, read.id) is False
    assert [c.name for c in store.list_capabilities(t.id)] == ["write", "read"]


def test_startup_files_ordered_by_order_index_then_path(store: Store) -> None:
    t = store.create_template("startup")
    store.add_startup_file(t.id, "z.js", order_index=1)
    store.add_startup_file(t.id, "b.js", order_index=2)
    store.add_startup_file(t.id, "a.js", order_index=2)
    first = store.add_startup_file(t.id, "y.js")  # order_index defaults to 0
    listed = store.list_startup_files(t.id)
    assert [(f.order_index, f.path) for f in listed] == [
        (0, "y.js"),
        (1, "z.js"),
        (2, "a.js"),
        (2, "b.js"),
    ]
    assert listed[0] == first and first.mode == "eval"
    with pytest.raises(StartupFileExists) as raised:
        store.add_startup_file(t.id, "z.js", order_index=9)
    assert api_code(raised.value) == "STARTUP_FILE_EXISTS"
    assert store.delete_startup_file(t.id, first.id) is True
    assert [f.path for f in store.list_startup_files(t.id)] == ["z.js", "a.js", "b.js"]


def test_modules_and_libraries(store: Store) -> None:
    t = store.create_template("mods")
    path_module = store.add_module(t.id, "path")
    store.add_module(t.id, "url")
    assert [m.name for m in store.list_modules(t.id)] == ["path", "url"]
    assert store.list_modules(t.id)[0] == path_module
    with pytest.raises(ModuleExists):
        store.add_module(t.id, "path")
    assert store.remove_module(t.id, "path") is True
    assert store.remove_module(t.id, "path") is False
    assert [m.name for m in store.list_modules(t.id)] == ["url"]

    lodash = store.add_library(t.id, "lodash")
    assert store.list_libraries(t.id) == [lodash]
    with pytest.raises(LibraryExists) as raised:
        store.add_library(t.id, "lodash")
    assert api_code(raised.value) == "LIBRARY_EXISTS"
    assert store.remove_library(t.id, "lodash") is True
    assert store.list_libraries(t.id) == []


def test_template_detail_gathers_everything(store: Store) -> None:
    t = store.create_template("detail")
    cap = store.add_capability(t.id, "fs", "read")
    startup = store.add_startup_file(t.id, "init.js")
    module = store.add_module(t.id, "path")
    library = store.add_library(t.id, "lodash")
    detail = store.get_template_detail(t.id)
    assert detail.template == store.get_template(t.id)
    assert detail.settings == store.get_settings(t.id)
    assert (detail.capabilities, detail.startup_files) == ([cap], [startup])
    assert (detail.modules, detail.libraries) == ([module], [library])


def test_deleting_a_template_cascades_to_its_parts_only(store: Store, db_path) -> None:
    t = store.create_template("doomed")
    store.add_capability(t.id, "fs", "read")
    store.add_startup_file(t.id, "init.js")
    store.add_module(t.id, "path")
    store.add_library(t.id, "lodash")
    session = store.create_session(t.id, "ws", "oid", "/tmp/wt", status="ready")
    execution = store.create_execution("repl", session_id=session.id, input="1")
    store.append_events(execution.id, [NewEvent(1, "input_echo", {"text": "1"})])
    store.finish_execution(
        execution.id,
        "ok",
        result={"type": "number", "preview": "1"},
        remaining_events=[NewEvent(2, "value", {"type": "number", "preview": "1"})],
    )

    store.delete_template(t.id)

    with pytest.raises(TemplateNotFound):
        store.get_template(t.id)
    import sqlite_utils

    raw = sqlite_utils.Database(db_path)
    for table in ("template_settings", "capabilities", "startup_files", "template_modules",
                  "template_libraries"):
        assert raw[table].count_where("template_id = ?", [t.id]) == 0, table
    raw.close()
    # Sessions and their history stay readable and keep the template id as plain data.
    kept = store.get_session(session.id)
    assert kept.template_id == t.id and kept.settings["limits"] == DEFAULT_LIMITS
    assert [e.id for e in store.list_executions(session.id)] == [execution.id]
    assert [e.seq for e in store.list_events(execution.id)] == [1, 2]
    # The name is free again.
    assert store.create_template("doomed").id != t.id


def test_empty_names_are_refused(store: Store) -> None:
    with pytest.raises(InvalidValue):
        store.create_template("")
    t = store.create_template("ok")
    with pytest.raises(InvalidValue):
        store.add_module(t.id, "")
