"""Imports and require through a real supervisor: a real SQLite store, real sandboxes, a real
worktree in a temporary directory, packages as real directories of files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import Limits
from supervisor import Supervisor
from supervisor.base_images import BaseImages
from supervisor.errors import StartupModeUnsupported
from supervisor.imports.resolution import Package
from supervisor.imports.worktree_tree import WorktreeTree
from supervisor.libraries import Resolved
from supervisor.modules.grants import SessionGrants

CATCH = "(() => {{ try {{ {code}; return 'no error'; }} catch (e) {{ return [e.code, e.message]; }} }})()"


def write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "worktree"
    write(root, {
        "src/util.js": "export const twice = (x) => 2 * x;\n",
        "src/config.json": '{"n": 21, "__proto__": {"polluted": true}}',
        "src/counter.cjs": "let n = 0; exports.next = () => ++n; exports.name = 'counter';\n",
        "src/a.cjs": "exports.early = 'a'; const b = require('./b.cjs'); exports.fromB = b.value;\n",
        "src/b.cjs": ("const a = require('./a.cjs');\n"
                      "exports.value = 'b saw ' + a.early + ',' + a.fromB;\n"),
        "src/self.mjs": ("import * as me from './self.mjs';\nexport const x = 1;\n"
                         "export const keys = () => Object.keys(me);\n"),
        "src/ping.mjs": "import { pong } from './pong.mjs';\nexport const ping = () => 'ping ' + pong();\n",
        "src/pong.mjs": ("import { ping } from './ping.mjs';\nexport const pong = () => 'pong';\n"
                         "export const both = () => ping();\n"),
        "src/sloppy.cjs": "undeclared = 5; module.exports = typeof undeclared;\n",
        "src/throws.cjs": "throw new TypeError('at load ' + __filename);\n",
        "src/esm.mjs": "export default 1;\n",
        "main.mjs": ("import { twice } from './src/util';\nimport config from './src/config.json';\n"
                     "import counter, { next, name } from './src/counter.cjs';\n"
                     "export const r = [twice(config.n), next(), counter.next(), name,\n"
                     "  Object.keys(config), ({}).polluted === undefined];\n"),
        "detected.js": "import { twice } from './src/util.js';\nexport const v = twice(4);\n",
        "plain.js": "var plainGlobal = 'kept'; typeof require + ',' + typeof module\n",
        "main.cjs": ("const a = require('./src/a.cjs');\nconst j = require('./src/config.json');\n"
                     "module.exports = { a, n: j.n, file: __filename, dir: __dirname,\n"
                     "  sloppy: require('./src/sloppy.cjs'), same: require('./src/config') === j };\n"),
    })
    return root


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    s = Supervisor.open(tmp_path / "vm.db", run_root=tmp_path / "worktree")
    yield s
    s.close()


@pytest.fixture
def sid(sup: Supervisor, worktree: Path) -> str:
    t = sup.templates.create("imports")
    return sup.create_session(t.id, "ws", "abc", str(worktree)).id


def ok(sup: Supervisor, sid: str, code: str) -> Any:
    ex = sup.repl(sid, code)
    assert ex.status == "ok", ex.error
    assert ex.result is not None
    return ex.result["json"]


def file_value(sup: Supervisor, sid: str, path: str) -> Any:
    ex = sup.run_file(sid, path)
    assert ex.status == "ok", ex.error
    assert ex.result is not None
    return ex.result.get("json")


def caught(sup: Supervisor, sid: str, code: str) -> Any:
    return ok(sup, sid, CATCH.format(code=code))


def import_error(sup: Supervisor, sid: str, specifier: str) -> str:
    return str(ok(sup, sid, f"import({specifier!r}).then(() => 'loaded', e => e.message)"))


def test_esm_json_and_commonjs_imported_together(sup: Supervisor, sid: str) -> None:
    assert file_value(sup, sid, "main.mjs") == {"r": [42, 1, 2, "counter", ["n", "__proto__"], True]}


def test_a_js_file_with_import_runs_as_a_module_and_one_without_as_a_script(sup: Supervisor, sid: str) -> None:
    assert file_value(sup, sid, "detected.js") == {"v": 8}
    assert file_value(sup, sid, "plain.js") == "function,undefined"
    assert ok(sup, sid, "plainGlobal") == "kept"  # a script's globals stay


def test_a_scripts_global_require_resolves_from_the_file_that_calls_it(
        sup: Supervisor, worktree: Path) -> None:
    (worktree / "nested").mkdir()
    (worktree / "nested" / "util.cjs").write_text("module.exports = 'nested util';\n")
    (worktree / "util.cjs").write_text("module.exports = 'root util';\n")
    (worktree / "nested" / "main.js").write_text(
        "var fromScript = require('./util.cjs');\n"
        "globalThis.requireLater = () => require('./util.cjs');\nfromScript;\n")
    template = sup.templates.create("script-require")
    sid = sup.create_session(template.id, "ws", "abc", str(worktree)).id
    assert file_value(sup, sid, "nested/main.js") == "nested util"
    assert ok(sup, sid, "requireLater()") == "nested util"  # the function's file, not the caller's
    assert ok(sup, sid, "require('./util.cjs')") == "root util"  # the REPL: the root
    # A forged Error changes nothing: the guest half captured the constructor.
    assert ok(sup, sid, "globalThis.Error = function () { return {stack: '  at x (../../etc/p.js:1:1)'} };"
                        " require('./util.cjs')") == "root util"


def test_a_cjs_file_runs_as_commonjs_with_cycles_json_and_sloppy_mode(sup: Supervisor, sid: str) -> None:
    assert file_value(sup, sid, "main.cjs") == {
        "a": {"early": "a", "fromB": "b saw a,undefined"}, "n": 21, "file": "main.cjs",
        "dir": ".", "sloppy": "number", "same": True}


def test_require_from_the_repl_is_cached_per_session(sup: Supervisor, sid: str) -> None:
    assert ok(sup, sid, "require('./src/counter.cjs').next()") == 1
    assert ok(sup, sid, "require('./src/counter').next()") == 2
    assert ok(sup, sid, "import('./src/counter.cjs').then(m => m.next())") == 3  # the same module


def test_require_failures_have_nodes_codes(sup: Supervisor, sid: str) -> None:
    assert caught(sup, sid, "require('./nothing')") == ["MODULE_NOT_FOUND", "Cannot find module './nothing'"]
    assert caught(sup, sid, "require('left-pad')") == ["MODULE_NOT_FOUND", "Cannot find module 'left-pad'"]
    assert caught(sup, sid, "require('./src/esm.mjs')")[0] == "ERR_REQUIRE_ESM"
    assert caught(sup, sid, "require('../outside.js')") == ["ERR_ACCESS_DENIED",
                                                           "'../outside.js' leads out of the worktree"]
    assert caught(sup, sid, "require('/etc/passwd')")[0] == "ERR_ACCESS_DENIED"
    for url in ("qjs:std", "file:///etc/passwd", "data:text/javascript,1", "https://x.test/a.js"):
        assert caught(sup, sid, f"require({url!r})")[0] == "ERR_UNSUPPORTED_ESM_URL_SCHEME"
    assert caught(sup, sid, "require('./a\\0b')")[0] == "ERR_INVALID_ARG_VALUE"
    assert caught(sup, sid, "require('./\\ud800')")[0] == "ERR_INVALID_ARG_VALUE"
    assert caught(sup, sid, "require('./' + 'x'.repeat(100000))")[0] == "ERR_INVALID_ARG_VALUE"
    assert caught(sup, sid, "require('fs')")[0] == "ERR_MODULE_NOT_ENABLED"
    # A module that throws while it loads is not kept: the next require runs it again.
    assert caught(sup, sid, "require('./src/throws.cjs')") == [None, "at load src/throws.cjs"]
    assert caught(sup, sid, "require('./src/throws.cjs')") == [None, "at load src/throws.cjs"]


def test_import_refusals_name_the_specifier_and_the_reason(sup: Supervisor, sid: str) -> None:
    assert import_error(sup, sid, "../x.js") == "could not load module '../x.js': '../x.js' leads out of the worktree"
    assert import_error(sup, sid, "qjs:std") == "could not load module 'qjs:std': not allowed"
    assert "URL specifiers (file:)" in import_error(sup, sid, "file:///etc/passwd")
    assert "URL specifiers (data:)" in import_error(sup, sid, "data:text/javascript,export default 1")
    assert "absolute paths are not allowed" in import_error(sup, sid, "/src/util.js")
    assert import_error(sup, sid, "./src/util.js") == "loaded"


def test_symlinks_out_of_the_worktree_cannot_be_imported(sup: Supervisor, worktree: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text('{"secret": 1}')
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "s.cjs").write_text("module.exports = 'secret'")
    os.symlink(tmp_path / "secret.json", worktree / "leak.json")
    os.symlink(tmp_path / "secrets", worktree / "leakdir")
    os.symlink("../secret.json", worktree / "relative-leak.json")
    t = sup.templates.create("links")
    sid = sup.create_session(t.id, "ws", "abc", str(worktree)).id
    for spec in ("./leak.json", "./leak", "./leakdir/s.cjs", "./relative-leak.json"):
        assert caught(sup, sid, f"require({spec!r})")[0] == "MODULE_NOT_FOUND", spec
        assert "could not load module" in import_error(sup, sid, spec)


def test_self_and_mutual_import_cycles_load_once(sup: Supervisor, sid: str) -> None:
    assert ok(sup, sid, "import('./src/self.mjs').then(m => m.keys())") == ["keys", "x"]
    assert ok(sup, sid, "import('./src/pong.mjs').then(m => m.both())") == "ping pong"


def test_the_guest_cannot_redirect_require_by_tampering_with_builtins(sup: Supervisor, sid: str) -> None:
    ok(sup, sid, """
        JSON.parse = () => 'tampered'; Function.prototype.call = () => 'tampered';
        Reflect.apply = () => 'tampered'; String.prototype.slice = () => 'tampered';
        globalThis.eval = () => 'tampered'; Object.defineProperty = () => 'tampered';
        try { __vmSystemCommonJS = null; } catch {}
        try { delete globalThis.__vmSystemCommonJS; } catch {}
        1""")
    assert ok(sup, sid, "require('./src/config.json').n") == 21
    assert ok(sup, sid, "require('./src/a.cjs').early") == "a"
    assert file_value(sup, sid, "main.mjs")["r"][0] == 42
    ex = sup.repl(sid, "let __vmSystemCommonJS = 1")
    assert ex.status == "error"  # it cannot be shadowed either


def test_require_is_a_recorded_host_call(sup: Supervisor, sid: str) -> None:
    ex = sup.repl(sid, "require('./src/counter.cjs'); require('./src/counter.cjs'); 1")
    calls = [e.payload for e in sup.list_events(ex.id) if e.type == "host_call"]
    assert [c["name"] for c in calls] == ["modules.require"]  # the second is the guest's cache
    assert calls[0]["ok"] is True and calls[0]["bytes_out"] > 0


def test_ten_thousand_modules(sup: Supervisor, worktree: Path, tmp_path: Path) -> None:
    """A fan-out of 10,000 imports loads; a chain of 10,000 requires ends at a limit, cleanly."""
    fan = worktree / "fan"
    fan.mkdir()
    for i in range(10_000):
        (fan / f"m{i}.mjs").write_text(f"export const v = {i};\n")
        (fan / f"c{i}.cjs").write_text(f"module.exports = require('./c{i + 1}.cjs') + 1;\n" if i < 9_999
                                       else "module.exports = 0;\n")
    (fan / "all.mjs").write_text("".join(f"import {{ v as v{i} }} from './m{i}.mjs';\n" for i in range(10_000))
                                 + "export const sum = " + " + ".join(f"v{i}" for i in range(10_000)) + ";\n")
    t = sup.templates.create("big")
    sup.templates.patch_settings(t.id, {"limits": {"wall_ms": 120_000, "cpu_ms": 60_000}})
    sid = sup.create_session(t.id, "ws", "abc", str(worktree)).id
    assert file_value(sup, sid, "fan/all.mjs") == {"sum": sum(range(10_000))}
    ex = sup.repl(sid, "require('./fan/c0.cjs')")
    assert ex.status in ("error", "limit_exceeded"), ex.status
    assert ex.error is not None
    assert sup.get_session(sid).status == "ready"
    assert ok(sup, sid, "1 + 1") == 2


def test_startup_files_in_mode_import(sup: Supervisor, worktree: Path) -> None:
    write(worktree, {"boot.js": "import { twice } from './src/util.js';\nglobalThis.booted = twice(5);\n"})
    t = sup.templates.create("boot")
    sup.templates.add_startup_file(t.id, "boot.js", mode="import")
    with pytest.raises(StartupModeUnsupported):
        sup.templates.add_startup_file(t.id, "boot.js", mode="module")
    sid = sup.create_session(t.id, "ws", "abc", str(worktree)).id
    assert ok(sup, sid, "booted") == 10
    startup = [e for e in sup.list_executions(sid) if e.kind == "startup"]
    assert len(startup) == 1 and startup[0].status == "ok"


def test_one_shot_runs_import_from_the_run_root(worktree: Path, sup: Supervisor) -> None:
    ex = sup.run(path="main.mjs")
    assert ex.status == "ok", ex.error
    assert ex.result is not None and ex.result["json"]["r"][0] == 42
    ex = sup.run(code="require('./src/util.js')")
    assert ex.status == "error" and ex.error is not None
    assert ex.error["message"].startswith("require() of the ES module")


def test_packages_from_directories_by_bare_name(tmp_path: Path, worktree: Path) -> None:
    """The loader given packages (as the integrator passes a template's libraries)."""
    packages = tmp_path / "packages"
    write(packages / "lodash", {"package.json": '{"name": "lodash", "main": "lodash.js"}',
                                "lodash.js": ("exports.chunk = (a, n) => { const o = [];\n"
                                              "  for (let i = 0; i < a.length; i += n) o.push(a.slice(i, i + n));\n"
                                              "  return o; };\n")})
    write(packages / "dual", {"package.json": '{"exports": {".": {"import": "./index.mjs", "require": "./index.cjs"}}}',
                              "index.mjs": "export const kind = 'esm';\n", "index.cjs": "exports.kind = 'cjs';\n"})
    write(packages / "bad", {"package.json": '{"main": "../lodash/lodash.js"}'})
    trees = {name: WorktreeTree(str(packages / name)) for name in ("lodash", "dual", "bad")}
    grants = SessionGrants([], [], worktree=str(worktree), session_id=None, template_id=None,
                           data_dir=tmp_path, packages={
                               "lodash": Package("4.17.21", trees["lodash"]),
                               "dual": Package("1.0.0", trees["dual"]),
                               "bad": Package("0.1.0", trees["bad"])})
    bases = BaseImages(Limits())
    try:
        with bases.sandbox(Resolved([], {}), Limits(), grants) as sb:
            out = sb.eval_module("import { chunk } from 'lodash';\nimport { kind } from 'dual';\n"
                                 "export const r = [chunk([1, 2, 3, 4], 2).length, kind, require('dual').kind,"
                                 " require('lodash') === require('lodash')];", filename="m.mjs")
            assert out.status == "ok", out.error
            assert out.value is not None and out.value["json"] == {"r": [2, "esm", "cjs", True]}
            out = sb.eval("try { require('bad') } catch (e) { [e.code, e.message] }")
            assert out.value is not None and out.value["json"][0] == "ERR_INVALID_PACKAGE_TARGET"
    finally:
        bases.close()
        grants.close()
        for tree in trees.values():
            tree.close()
