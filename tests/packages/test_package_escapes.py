"""Hostile npm packages, from a local registry-shaped server through `sup.packages.add` into
real sessions: exports that lead out, `*` patterns that would carry `..`, package.json nested
past what a parser survives, names that collide with worktree paths, and libraries whose global
build tampers with the built-ins before any session runs.

What must hold: a package that leads out is refused when it is added (PACKAGE_REFUSED, nothing
stored), a subpath `exports` keeps private stays private, nothing of the host leaks, and
sessions (their imports and requires of worktree files included) keep working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from registry_server import LocalRegistry
from session_helpers import repl_value, session_with

from supervisor import Supervisor
from supervisor.errors import PackageRefused

SECRET = "private-file-of-the-package"


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    tree = tmp_path / "wt"
    tree.mkdir()
    (tree / "a.cjs").write_text("module.exports = 'a';\n")
    (tree / "m.mjs").write_text("export const v = 'm';\n")
    (tree / "c.json").write_text('{"n": 1}')
    return tree




def _required(sup: Supervisor, sid: str, spec: str) -> list[Any]:
    return list(repl_value(sup, sid, f"(() => {{ try {{ return ['OK', require({spec!r})]; }}"
                                 " catch (e) { return [e.code, String(e.message)]; } })()"))


def _imported(sup: Supervisor, sid: str, spec: str) -> str:
    code = f"import({spec!r}).then(m => 'loaded ' + JSON.stringify(m.default), e => e.message)"
    return str(repl_value(sup, sid, code))


def _assert_worktree_imports_work(sup: Supervisor, sid: str) -> None:
    assert sup.get_session(sid).status == "ready"
    assert repl_value(sup, sid, "[require('./a.cjs'), require('./c.json').n]") == ["a", 1]
    assert repl_value(sup, sid, "import('./m.mjs').then(m => m.v)") == "m"
    assert repl_value(sup, sid, "import('./c.json').then(m => m.default.n)") == 1


@pytest.mark.parametrize("target", ["./../x.js", "../x.js", "/x.js", "./node_modules/../../x.js",
                                    "./a/../../x.js", "x.js", "file:///etc/passwd", ".\\..\\x.js"])
def test_exports_targets_that_lead_out_are_refused_when_added(sup: Supervisor, registry: LocalRegistry,
                                                              target: str) -> None:
    registry.publish("leaky", "1.0.0", {"index.js": b"module.exports = 1"},
                     manifest={"exports": {".": "./index.js", "./x": {"require": target}}})
    with pytest.raises(PackageRefused, match="exports target"):
        sup.packages.add("leaky@1.0.0")
    assert sup.packages.list() == []


@pytest.mark.parametrize("field", ["main", "module", "browser"])
def test_entry_points_that_lead_out_are_refused_when_added(sup: Supervisor, registry: LocalRegistry,
                                                           field: str) -> None:
    registry.publish("leaky", "1.0.0", {"index.js": b"module.exports = 1"}, manifest={field: "../../etc/passwd"})
    with pytest.raises(PackageRefused, match="points outside the package"):
        sup.packages.add("leaky@1.0.0")
    assert sup.packages.list() == []


def test_a_package_json_nested_past_the_parser_is_refused_not_a_crash(sup: Supervisor,
                                                                      registry: LocalRegistry) -> None:
    """Nesting near 1,000 levels makes json's C scanner raise RecursionError, which is not a
    ValueError: it must still be PACKAGE_REFUSED (HTTP 422), not INTERNAL."""
    for name, depth in (("deep-arrays", 5_000), ("deep-exports", 2_000)):
        inner = "[" * depth + "]" * depth if name == "deep-arrays" else \
            '{"default": ' * depth + '"./index.js"' + "}" * depth
        text = f'{{"name": "{name}", "version": "1.0.0", "exports": {inner}}}'
        registry.publish(name, "1.0.0", {"package.json": text.encode(), "index.js": b"module.exports = 1"})
        with pytest.raises(PackageRefused, match="its package.json is nested too deep"):
            sup.packages.add(f"{name}@1.0.0")
    # A megabyte of nesting that parses (below the limit) is refused by the exports check.
    text = '{"name": "deepish", "version": "1.0.0", "exports": ' + '{"default": ' * 40 + '"./i.js"' + "}" * 41
    registry.publish("deepish", "1.0.0", {"package.json": text.encode(), "i.js": b"1"})
    with pytest.raises(PackageRefused, match="nested too deep or too large"):
        sup.packages.add("deepish@1.0.0")
    assert sup.packages.list() == []
    registry.publish("fine", "1.0.0", {"index.js": b"module.exports = 'fine'"})
    assert [p.name for p in sup.packages.add("fine@1.0.0")] == ["fine"]


@pytest.fixture
def star(sup: Supervisor, registry: LocalRegistry) -> str:
    registry.publish("star", "1.0.0", {"lib/a.js": b"module.exports = 'a';",
                                       "secret.js": f"module.exports = {SECRET!r};".encode(),
                                       "lib/deep/b.js": b"module.exports = 'b';"},
                     manifest={"exports": {".": "./lib/a.js", "./lib/*": "./lib/*.js", "./raw/*": "./lib/*"}})
    sup.packages.add("star@1.0.0")
    return "star@1.0.0"


@pytest.mark.parametrize("spec", ["star/lib/../secret", "star/raw/../secret.js", "star/lib/deep/../../secret",
                                  "star/lib/./a", "star/lib//a", "star/lib/deep/..", "star/lib/a/"])
def test_patterns_do_not_carry_dot_segments_into_private_files(sup: Supervisor, worktree: Path, star: str,
                                                               spec: str) -> None:
    sid = session_with(sup, worktree, star)
    answer = _required(sup, sid, spec)
    assert answer[0] == "ERR_PACKAGE_PATH_NOT_EXPORTED", answer
    assert SECRET not in str(answer)
    message = _imported(sup, sid, spec)
    assert message.startswith(f"could not load module '{spec}'"), message
    assert SECRET not in message
    # What the patterns do export still loads.
    assert _required(sup, sid, "star/lib/deep/b") == ["OK", "b"]
    assert _required(sup, sid, "star/raw/a.js") == ["OK", "a"]
    assert _required(sup, sid, "star/secret")[0] == "ERR_PACKAGE_PATH_NOT_EXPORTED"
    assert _required(sup, sid, "star/lib/%2e%2e/secret")[0] == "MODULE_NOT_FOUND"  # no percent decoding
    _assert_worktree_imports_work(sup, sid)


def test_package_paths_without_exports_stay_in_the_package(sup: Supervisor, registry: LocalRegistry,
                                                           worktree: Path) -> None:
    registry.publish("plain", "1.0.0", {"index.js": b"module.exports = 'plain';", "lib/x.js": b"module.exports = 'x';"})
    sup.packages.add("plain@1.0.0")
    sid = session_with(sup, worktree, "plain@1.0.0")
    assert _required(sup, sid, "plain/lib/x") == ["OK", "x"]
    for spec in ("plain/../a.cjs", "plain/lib/../../a.cjs", "plain/../../etc/passwd"):
        assert _required(sup, sid, spec) == ["ERR_ACCESS_DENIED", f"'{spec}' leads out of package plain@1.0.0"]
    # From a package's own file, `..` above its root is refused too, never the worktree.
    forged = repl_value(sup, sid, "(() => { try { return host['modules.require']('../../a.cjs', "
                              "'pkg:plain@1.0.0/lib/x.js').name; } catch (e) { return e.message; } })()")
    assert forged == "ERR_ACCESS_DENIED\x1f'../../a.cjs' leads out of the package plain@1.0.0"
    forged = repl_value(sup, sid, "(() => { try { return host['modules.require']('./a.cjs', "
                              "'pkg:plain@1.0.0/../../x').name; } catch (e) { return e.message; } })()")
    assert forged == "ERR_ACCESS_DENIED\x1f'./a.cjs' leads out of the package plain@1.0.0"
    _assert_worktree_imports_work(sup, sid)


def test_a_package_named_like_a_worktree_path_wins_only_for_its_bare_name(
        sup: Supervisor, registry: LocalRegistry, worktree: Path) -> None:
    """A bare name is the package first (docs: roots only for names that are no package), but
    a relative path is always the worktree's: a package cannot shadow `./src/x`."""
    (worktree / "src").mkdir()
    (worktree / "src" / "index.js").write_text("module.exports = 'worktree src';\n")
    registry.publish("src", "1.0.0", {"index.js": b"module.exports = 'package src';"})
    sup.packages.add("src@1.0.0")
    sid = session_with(sup, worktree, "src@1.0.0")
    assert _required(sup, sid, "src") == ["OK", "package src"]
    assert _required(sup, sid, "./src") == ["OK", "worktree src"]
    # A package's file asking for a package it does not depend on never falls back to the worktree.
    registry.publish("asker", "1.0.0", {"index.js": b"module.exports = () => require('a.cjs');"})
    sup.packages.add("asker@1.0.0")
    sid = session_with(sup, worktree, "asker@1.0.0")
    assert _required(sup, sid, "a.cjs") == ["OK", "a"]  # from the worktree, by root
    answer = repl_value(sup, sid, "(() => { try { return require('asker')(); }"
                              " catch (e) { return [e.code, e.message]; } })()")
    assert answer[0] == "MODULE_NOT_FOUND" and "required by asker@1.0.0" in answer[1], answer


LIBRARIES: dict[str, bytes] = {
    "gopn": b"Object.getOwnPropertyNames = function () { return ['host', 'require']; };"
            b" Object.keys = function () { return []; }; globalThis.gopnLib = 1;",
    "throwing-getter": b"Object.defineProperty(globalThis, 'boom', { get() { throw new Error('boom'); },"
                       b" enumerable: true, configurable: true }); globalThis.throwingLib = 1;",
    "many-globals": b"for (var i = 0; i < 20000; i++) globalThis['g' + i] = i;",
    "tamper": b"JSON.parse = function () { return 'tampered'; }; JSON.stringify = function () { return '1'; };"
              b" Array.prototype.push = function () { throw new Error('push'); };"
              b" Function.prototype.call = function () { throw new Error('call'); };"
              b" Function.prototype.apply = function () { throw new Error('apply'); };"
              b" Reflect.apply = function () { throw new Error('Reflect.apply'); };"
              b" String.prototype.slice = function () { return '../../'; }; globalThis.tamperLib = 1;",
    "host-grab": b"globalThis.grabbedHost = typeof host === 'object' ? host : null;"
                 b" globalThis.grabbedKeys = grabbedHost ? Object.keys(grabbedHost) : []; globalThis.hostLib = 1;",
}


@pytest.mark.parametrize("name", sorted(LIBRARIES))
def test_hostile_library_globals_leave_sessions_and_their_imports_working(
        sup: Supervisor, registry: LocalRegistry, worktree: Path, name: str) -> None:
    registry.publish(name, "1.0.0", {"index.js": LIBRARIES[name]}, manifest={"main": "index.js"})
    sup.packages.add(f"{name}@1.0.0")
    sid = session_with(sup, worktree, f"{name}@1.0.0")
    _assert_worktree_imports_work(sup, sid)
    assert _required(sup, sid, "../a.cjs")[0] == "ERR_ACCESS_DENIED"
    if name == "host-grab":
        # The library saw the same one host function a session has: nothing more of the host.
        assert repl_value(sup, sid, "grabbedKeys") == ["modules.require"]
        forged = repl_value(sup, sid, "(() => { try { grabbedHost['modules.require']('../a.cjs', ''); }"
                                  " catch (e) { return e.message; } })()")
        assert forged == "ERR_ACCESS_DENIED\x1f'../a.cjs' leads out of the worktree"
    # A second session from the same base image is as good as the first.
    _assert_worktree_imports_work(sup, session_with(sup, worktree, f"{name}@1.0.0"))
