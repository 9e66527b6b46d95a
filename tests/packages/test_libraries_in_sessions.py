"""Template libraries from the package store, in real sessions: a global build defines its
global and is what `require` and `import` of its name give; a CommonJS or ES-module-only
package is importable by name; dependencies resolve from the store or the library is refused
naming the one missing; sessions restored after a restart import what they were spawned with.
Packages come from a local registry-shaped server (tests that need the real npm registry say
so, and are marked `registry`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_server import LocalRegistry
from session_helpers import repl_value, session_with

from supervisor import Supervisor
from supervisor.errors import LibraryNotFound, ValidationError

UMD = b"""(function (root, factory) {
  if (typeof exports === 'object' && typeof module !== 'undefined') module.exports = factory();
  else root.tinyLib = factory();
})(this, function () { return { twice: function (x) { return 2 * x; }, id: Math.random() }; });
"""


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    tree = tmp_path / "wt"
    tree.mkdir()
    return tree




def test_a_global_build_defines_its_global_and_is_what_require_and_import_give(
        sup: Supervisor, registry: LocalRegistry, worktree: Path) -> None:
    registry.publish("tiny-lib", "1.0.0", {"tiny.js": UMD}, manifest={"main": "tiny.js"})
    sup.packages.add("tiny-lib@1.0.0")
    sid = session_with(sup, worktree, "tiny-lib@1.0.0")
    assert repl_value(sup, sid, "tinyLib.twice(21)") == 42
    # One copy of the library: what require gives is the global itself.
    assert repl_value(sup, sid, "require('tiny-lib') === tinyLib") is True
    (worktree / "m.mjs").write_text("import t from 'tiny-lib';\nexport const same = t === globalThis.tinyLib;\n")
    execution = sup.run_file(sid, "m.mjs")
    assert execution.status == "ok", execution.error
    assert execution.result is not None and execution.result["json"] == {"same": True}


def test_a_min_js_beside_the_entry_is_the_one_evaluated(
        sup: Supervisor, registry: LocalRegistry, worktree: Path) -> None:
    registry.publish("two-builds", "1.0.0", {"lib.js": b"globalThis.which = 'full';",
                                             "lib.min.js": b"globalThis.which='min';"},
                     manifest={"main": "lib.js"})
    sup.packages.add("two-builds@1.0.0")
    sid = session_with(sup, worktree, "two-builds@1.0.0")
    assert repl_value(sup, sid, "which") == "min"


def test_a_commonjs_package_with_a_dependency_is_importable_by_name(
        sup: Supervisor, registry: LocalRegistry, worktree: Path) -> None:
    registry.publish("dep-a", "1.2.0", {"index.js": b"exports.base = 40;"})
    registry.publish("uses-dep", "2.0.0",
                     {"index.js": b"const a = require('dep-a'); module.exports = { answer: a.base + 2 };"},
                     dependencies={"dep-a": "^1.0.0"})
    sup.packages.add("uses-dep@2.0.0", with_deps=True)
    sid = session_with(sup, worktree, "uses-dep@2.0.0")
    # Not a global build (it needs `module`): nothing global is defined, the name imports.
    assert repl_value(sup, sid, "typeof answer") == "undefined"
    assert repl_value(sup, sid, "require('uses-dep').answer") == 42
    assert repl_value(sup, sid, "require('dep-a').base") == 40


def test_an_es_module_package_is_imported_in_the_base(
        sup: Supervisor, registry: LocalRegistry, worktree: Path) -> None:
    registry.publish("esm-only", "1.0.0", {"index.mjs": b"export const seven = 7; export default 'd';"},
                     manifest={"exports": {".": {"import": "./index.mjs"}}, "type": "module"})
    sup.packages.add("esm-only@1.0.0")
    sid = session_with(sup, worktree, "esm-only@1.0.0")
    (worktree / "m.mjs").write_text("import d, { seven } from 'esm-only';\nexport const v = [d, seven];\n")
    execution = sup.run_file(sid, "m.mjs")
    assert execution.status == "ok", execution.error
    assert execution.result is not None and execution.result["json"] == {"v": ["d", 7]}


def test_a_missing_dependency_is_refused_by_name(sup: Supervisor, registry: LocalRegistry) -> None:
    registry.publish("dep-b", "1.0.0", {"index.js": b"exports.x = 1;"})
    registry.publish("needs-b", "1.0.0", {"index.js": b"module.exports = require('dep-b');"},
                     dependencies={"dep-b": "1.x"})
    sup.packages.add("needs-b@1.0.0")  # without its dependency
    template = sup.templates.create("t")
    with pytest.raises(LibraryNotFound) as caught:
        sup.templates.add_library(template.id, "needs-b@1.0.0")
    assert "dep-b" in caught.value.message
    assert sup.templates.list_libraries(template.id) == []


def test_a_library_not_in_the_store_says_how_to_add_it(sup: Supervisor) -> None:
    template = sup.templates.create("t")
    with pytest.raises(LibraryNotFound) as caught:
        sup.templates.add_library(template.id, "lodash-4.17.21")
    assert "libs add lodash@4.17.21" in caught.value.message


def test_a_library_that_throws_crashes_the_session_with_its_reason(
        sup: Supervisor, registry: LocalRegistry, worktree: Path) -> None:
    registry.publish("throws", "1.0.0", {"index.mjs": b"throw new Error('boom at load');"},
                     manifest={"exports": "./index.mjs"})
    sup.packages.add("throws@1.0.0")
    template = sup.templates.create("t")
    sup.templates.add_library(template.id, "throws@1.0.0")
    with pytest.raises(LibraryNotFound) as caught:
        sup.create_session(template.id, "w", "c", str(worktree))
    assert "boom at load" in caught.value.message
    crashed = sup.store.get_session(caught.value.details["session_id"])
    assert crashed.status == "crashed" and "boom at load" in (crashed.last_error or "")


def test_a_restored_session_imports_what_it_was_spawned_with(
        tmp_path: Path, registry: LocalRegistry, worktree: Path) -> None:
    registry.publish("cjs-lib", "1.0.0", {"index.js": b"exports.n = 5;"})
    first = Supervisor.open(tmp_path / "db.sqlite", npm_registry=registry.url, image_interval=0.01)
    try:
        first.packages.add("cjs-lib@1.0.0")
        sid = session_with(first, worktree, "cjs-lib@1.0.0")
        assert repl_value(first, sid, "globalThis.k = 1; require('cjs-lib').n") == 5
        first.flush_images()
    finally:
        first.close()
    again = Supervisor.open(tmp_path / "db.sqlite", npm_registry=registry.url)
    try:
        assert again.store.get_session(sid).status == "ready"
        # A file of the package not required before the restart: resolved through the
        # package the session was spawned with.
        assert repl_value(again, sid, "[k, require('cjs-lib/index.js').n]") == [1, 5]
    finally:
        again.close()


@pytest.mark.registry
def test_go_acceptance_lodash_from_the_real_npm_registry(tmp_path: Path, worktree: Path) -> None:
    """Needs the real npm registry: the Go acceptance case, a template with `lodash-4.17.21`."""
    sup = Supervisor.open(tmp_path / "db.sqlite")
    try:
        [lodash] = sup.packages.add("lodash-4.17.21")
        assert lodash.id == "lodash@4.17.21"
        with_lodash = session_with(sup, worktree, "lodash-4.17.21")
        assert repl_value(sup, with_lodash, "_.chunk([1,2,3,4], 2).length") == 2
        without = session_with(sup, worktree)
        execution = sup.repl(without, "_.chunk([1,2,3,4], 2).length")
        assert execution.status == "error"
        assert execution.error is not None and execution.error["message"] == "_ is not defined"
    finally:
        sup.close()


@pytest.mark.parametrize("name", ["lodash-4.17.21\n", " lodash@4.17.21", "lodash@4.17.21\t", "lo\x7fdash@1.0.0",
                                  "../../x", "@a/../b@1.0.0", "\ud800", "a" * 10_000, ""])
def test_a_library_name_that_is_not_exactly_one_is_refused(sup: Supervisor, name: str) -> None:
    template = sup.templates.create("names")
    with pytest.raises(ValidationError):
        sup.templates.add_library(template.id, name)
    assert sup.templates.list_libraries(template.id) == []
