"""Hostile imports in real sessions: a guest that calls the `modules.require` host function
itself with forged referrers, specifiers shaped to climb out of the worktree, and worktrees
holding symlinks, loops, FIFOs, devices, huge or undecodable files and hostile package.json.

What must hold whatever the guest or the worktree does: nothing outside the worktree (or a
session's packages) is read, every refusal is the code docs/api.md "Imports" gives, nothing
hangs, and the session (and the supervisor) still works afterwards. Each test drives a real
Supervisor on a temporary SQLite file with a real worktree directory.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.boot import data_dir
from supervisor.errors import InvalidPath, ValidationError

SECRET = "top-secret-outside-the-worktree"

# Runs `call(s, r)` for each pair and answers [code, message] (or ["OK", resolved name]).
FORGE = """(() => {{
  const R = host['modules.require']; const out = [];
  for (const [s, r] of {pairs}) {{
    try {{ out.push(['OK', R(s, r).name]); }}
    catch (e) {{ const t = String(e.message); const cut = t.indexOf('\\x1f');
                 out.push(cut > 0 ? [t.slice(0, cut), t.slice(cut + 1)] : [e.name, t]); }}
  }}
  return out; }})()"""


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "worktree"
    (root / "src").mkdir(parents=True)
    (root / "a.cjs").write_text("module.exports = 'a';\n")
    (root / "src" / "b.cjs").write_text("module.exports = 'b';\n")
    (root / "m.mjs").write_text("export const v = 'm';\n")
    # What every escape would like to read: beside the worktree, not in it.
    (tmp_path / "secret.cjs").write_text(f"module.exports = {SECRET!r};\n")
    (tmp_path / "secret.js").write_text(f"module.exports = {SECRET!r};\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.cjs").write_text(f"module.exports = {SECRET!r};\n")
    return root


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[Supervisor]:
    s = Supervisor.open(tmp_path / "vm.db")
    yield s
    s.close()


def _session(sup: Supervisor, worktree: Path, name: str = "escapes") -> str:
    template = sup.templates.create(name)
    session = sup.create_session(template.id, "ws", "abc", str(worktree))
    assert session.status == "ready", session.last_error
    return session.id


def ok(sup: Supervisor, sid: str, code: str) -> Any:
    ex = sup.repl(sid, code)
    assert ex.status == "ok", ex.error
    assert ex.result is not None
    return ex.result.get("json")


def required(sup: Supervisor, sid: str, spec: str) -> list[Any]:
    """[code, message] of `require(spec)`, or ["OK", its value]."""
    return list(ok(sup, sid, f"(() => {{ try {{ return ['OK', require({spec!r})]; }}"
                             " catch (e) { return [e.code, String(e.message)]; } })()"))


def imported(sup: Supervisor, sid: str, spec: str) -> str:
    return str(ok(sup, sid, f"import({spec!r}).then(m => 'loaded ' + JSON.stringify(m.default ?? m.v),"
                            " e => e.message)"))


def assert_still_works(sup: Supervisor, sid: str) -> None:
    assert sup.get_session(sid).status == "ready"
    assert ok(sup, sid, "require('./a.cjs') + require('./src/b.cjs')") == "ab"
    assert imported(sup, sid, "./m.mjs") == 'loaded "m"'


# ----- the host function, called directly ----------------------------------------------------


def test_the_guest_holds_only_modules_require(sup: Supervisor, worktree: Path) -> None:
    sid = _session(sup, worktree)
    assert ok(sup, sid, "Object.keys(host)") == ["modules.require"]


def test_forged_referrers_never_move_the_root_out_of_the_worktree(sup: Supervisor, worktree: Path,
                                                                  tmp_path: Path) -> None:
    sid = _session(sup, worktree)
    outside = str(tmp_path / "outside" / "y.cjs")
    pairs = [
        ["./a.cjs", "../../.."],  # a referrer above the root is the root, never above it
        ["../secret.cjs", "../../.."],
        ["./x.cjs", outside],  # an absolute host path names nothing: the root again
        ["../secret.cjs", "src/../../x.cjs"],
        ["./a.cjs", "a\0b"],
        ["./a.cjs", "<repl>/../../.."],
        ["./a.cjs", "vm:fs"],
        ["./a.cjs", "\ud800"],
        ["./x.cjs", "pkg:lodash@4.17.21/../../outside/x.cjs"],  # no such package here
        ["./x.cjs", "pkg:@a/b@1.0.0/../../../outside/x.cjs"],
        ["./a.cjs", 5],
        ["./a.cjs", None],
        ["./a.cjs", {"toString": None}],
        [5, ""],
        [["./a.cjs"], ""],
    ]
    code = FORGE.format(pairs="[" + ",".join(_js_pair(p) for p in pairs) + "]")
    answers = ok(sup, sid, code)
    assert answers == [
        ["OK", "a.cjs"],
        ["ERR_ACCESS_DENIED", "'../secret.cjs' leads out of the worktree"],
        ["MODULE_NOT_FOUND", "Cannot find module './x.cjs'"],
        ["ERR_ACCESS_DENIED", "'../secret.cjs' leads out of the worktree"],
        ["OK", "a.cjs"],
        ["OK", "a.cjs"],
        ["OK", "a.cjs"],
        ["OK", "a.cjs"],
        ["MODULE_NOT_FOUND", "no package lodash@4.17.21 in this session"],
        ["MODULE_NOT_FOUND", "no package @a/b@1.0.0 in this session"],
        ["ERR_INVALID_ARG_TYPE", "the referrer must be a string"],
        ["ERR_INVALID_ARG_TYPE", "the referrer must be a string"],
        ["ERR_INVALID_ARG_TYPE", "the referrer must be a string"],
        ["ERR_INVALID_ARG_TYPE", "a module specifier must be a string"],
        ["ERR_INVALID_ARG_TYPE", "a module specifier must be a string"],
    ]
    assert SECRET not in str(answers)
    assert_still_works(sup, sid)


def _js_pair(pair: list[Any]) -> str:
    spec, referrer = pair
    if isinstance(referrer, dict):  # an object whose toString/valueOf lie
        ref = "{ toString() { return '../..'; }, valueOf() { return '../..'; } }"
    else:
        ref = json.dumps(referrer)
    return f"[{json.dumps(spec)}, {ref}]"


def test_forged_calls_with_traps_huge_strings_and_vm_names(sup: Supervisor, worktree: Path) -> None:
    sid = _session(sup, worktree)
    answers = ok(sup, sid, FORGE.format(pairs="""[
        [{ toString() { throw new Error('trap'); } }, ''],
        ['./a.cjs', 'x'.repeat(1 << 20)],
        ['./' + 'a/'.repeat(3000) + 'x', ''],
        ['fs', 'vm:fs'],
        ['vm:fs', ''],
        ['pkg:lodash@4.17.21/lodash.js', ''],
        ['node:fs', 'pkg:lodash@4.17.21/x'],
        ['node:child_process', '']]"""))
    assert answers == [
        ["ERR_INVALID_ARG_TYPE", "a module specifier must be a string"],
        ["OK", "a.cjs"],  # a 1 MiB referrer is only a (root) name: bounded by the host budget
        ["ERR_INVALID_ARG_VALUE", "a module specifier is at most 4096 characters"],
        ["ERR_MODULE_NOT_ENABLED", "module 'fs' is not enabled for this template"],
        ["ERR_UNSUPPORTED_ESM_URL_SCHEME",
         "URL specifiers (vm:) are not allowed: import files by relative path and packages by name"],
        ["ERR_UNSUPPORTED_ESM_URL_SCHEME",
         "URL specifiers (pkg:) are not allowed: import files by relative path and packages by name"],
        ["ERR_MODULE_NOT_ENABLED", "module 'fs' is not enabled for this template"],
        ["MODULE_NOT_FOUND", "'node:child_process' is not a module of this runtime (only fs, database, exec, fetch)"],
    ]
    assert_still_works(sup, sid)


def test_tampering_with_the_guest_cache_reaches_nothing_outside(sup: Supervisor, worktree: Path) -> None:
    """The guest half is the guest's own: it can fill its cache with what it likes (its own
    code), but no name it defines makes the host read anything."""
    sid = _session(sup, worktree)
    ok(sup, sid, "__vmSystemCommonJS.define('../secret.cjs', 'module.exports = \"forged\"'); 1")
    assert required(sup, sid, "../secret.cjs") == ["ERR_ACCESS_DENIED", "'../secret.cjs' leads out of the worktree"]
    assert ok(sup, sid, "(() => { try { __vmSystemCommonJS.define = null; } catch (e) { return e.name; } })()") \
        == "TypeError"
    assert_still_works(sup, sid)


# ----- specifiers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "code"), [
    ("..\\secret.cjs", "MODULE_NOT_FOUND"),  # a backslash is a character of a name, not a separator
    (".\\..\\secret.cjs", "MODULE_NOT_FOUND"),
    ("%2e%2e/secret.cjs", "MODULE_NOT_FOUND"),  # no percent decoding
    ("./src/../../secret.cjs", "ERR_ACCESS_DENIED"),
    ("./a/../../secret", "ERR_ACCESS_DENIED"),
    ("\u2024\u2024/secret.cjs", "MODULE_NOT_FOUND"),  # one dot leader twice is not '..'
    ("\uff0e\uff0e/secret.cjs", "MODULE_NOT_FOUND"),  # fullwidth full stops
    ("./a.cjs.", "MODULE_NOT_FOUND"),  # no Windows-style trailing-dot stripping
    ("./a.cjs/", "MODULE_NOT_FOUND"),  # a trailing / asks for a directory
    ("//host/secret.cjs", "ERR_ACCESS_DENIED"),
    ("\\\\?\\C:\\secret.cjs", "MODULE_NOT_FOUND"),
    ("C:\\secret.cjs", "ERR_UNSUPPORTED_ESM_URL_SCHEME"),
    ("file:///etc/passwd", "ERR_UNSUPPORTED_ESM_URL_SCHEME"),
    ("node:fs", "ERR_MODULE_NOT_ENABLED"),
    ("fs", "ERR_MODULE_NOT_ENABLED"),
    ("vm:fs", "ERR_UNSUPPORTED_ESM_URL_SCHEME"),
    ("pkg:lodash@4.17.21/lodash.js", "ERR_UNSUPPORTED_ESM_URL_SCHEME"),
    ("lodash/../../secret.cjs", "MODULE_NOT_FOUND"),  # no such package; roots never climb
    ("src/../../secret.cjs", "MODULE_NOT_FOUND"),
    ("@a/../secret.cjs", "MODULE_NOT_FOUND"),  # not a scoped name
    ("@../secret.cjs", "MODULE_NOT_FOUND"),
    ("..", "ERR_ACCESS_DENIED"),
    ("../", "ERR_ACCESS_DENIED"),
    ("/etc/passwd", "ERR_ACCESS_DENIED"),
])
def test_specifiers_shaped_to_climb_out_are_refused(sup: Supervisor, worktree: Path, spec: str, code: str) -> None:
    sid = _session(sup, worktree)
    answer = required(sup, sid, spec)
    assert answer[0] == code, answer
    assert SECRET not in str(answer)
    message = imported(sup, sid, spec)
    assert message.startswith("could not load module"), message
    assert SECRET not in message


def test_require_of_a_specifier_with_nul_is_refused(sup: Supervisor, worktree: Path) -> None:
    sid = _session(sup, worktree)
    assert required(sup, sid, "./a\0.cjs") == ["ERR_INVALID_ARG_VALUE", "a module specifier must not contain NUL"]
    assert required(sup, sid, "./a.cjs\0/../../secret.cjs")[0] == "ERR_INVALID_ARG_VALUE"


def test_an_import_specifier_is_cut_at_nul_by_the_engine_and_its_prefix_resolved(
        sup: Supervisor, worktree: Path) -> None:
    """QuickJS hands the module loader a C string: an import's specifier ends at its first NUL
    (docs/api.md says so). What is left is resolved as any specifier: nothing past the NUL, a
    climb included, is seen."""
    sid = _session(sup, worktree)
    assert imported(sup, sid, "./a\0.cjs") == imported(sup, sid, "./a")
    assert imported(sup, sid, "./m.mjs\0/../../secret.cjs") == 'loaded "m"'


def test_roots_and_absolute_imports_stay_in_the_worktree(sup: Supervisor, worktree: Path, tmp_path: Path) -> None:
    """Resolver roots that climb or are absolute are refused when set; allowed absolute imports
    name worktree files only."""
    template = sup.templates.create("roots")
    for roots in (["src", ".."], ["../outside"], [str(tmp_path / "outside")], ["src/../.."]):
        with pytest.raises(ValidationError, match="resolver.roots must be relative and inside the worktree"):
            sup.templates.patch_settings(template.id, {"resolver": {"roots": roots}})
    sup.templates.patch_settings(template.id, {"resolver": {"roots": ["src", "."],
                                                            "allow_absolute_repo_imports": True}})
    sid = sup.create_session(template.id, "ws", "abc", str(worktree)).id
    assert required(sup, sid, "b.cjs") == ["OK", "b"]
    assert required(sup, sid, "secret.cjs")[0] == "MODULE_NOT_FOUND"
    assert required(sup, sid, str(tmp_path / "secret.cjs"))[0] == "MODULE_NOT_FOUND"  # worktree-relative
    assert required(sup, sid, "/../secret.cjs") == ["ERR_ACCESS_DENIED", "'/../secret.cjs' leads out of the worktree"]
    assert required(sup, sid, "/a.cjs") == ["OK", "a"]
    assert_still_works(sup, sid)


# ----- the worktree ---------------------------------------------------------------------------


def test_symlinks_loops_and_links_in_the_middle_of_a_path(sup: Supervisor, worktree: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside", worktree / "src" / "mid")  # a directory link leading out
    os.symlink("../../outside", worktree / "src" / "relmid")
    (worktree / "inner").mkdir()
    os.symlink("../src", worktree / "inner" / "up")  # inside, through a link: allowed
    os.symlink("loop2", worktree / "loop1")
    os.symlink("loop1", worktree / "loop2")
    os.symlink("loop1", worktree / "loop.cjs")
    os.symlink(".", worktree / "self")
    sid = _session(sup, worktree)
    for spec in ("./src/mid/x.cjs", "./src/mid/x", "./src/relmid/x.cjs", "./loop1", "./loop.cjs",
                 "./loop1/a.cjs", "./self/" * 60 + "a.cjs"):
        answer = required(sup, sid, spec)
        assert answer[0] == "MODULE_NOT_FOUND", (spec, answer)
        assert "could not load module" in imported(sup, sid, spec)
    assert required(sup, sid, "./inner/up/b.cjs") == ["OK", "b"]
    assert required(sup, sid, "./self/self/a.cjs") == ["OK", "a"]
    assert_still_works(sup, sid)


def test_a_file_swapped_for_a_symlink_between_two_requires(sup: Supervisor, worktree: Path, tmp_path: Path) -> None:
    """TOCTOU: the first require loaded the real file and keeps it (a module is loaded once per
    session); once the file is a link out, every specifier the guest has not asked yet is
    resolved again by the host and reads as absent, never as the target."""
    (worktree / "swap.cjs").write_text("module.exports = 'inside';\n")
    sid = _session(sup, worktree)
    assert required(sup, sid, "./swap.cjs") == ["OK", "inside"]
    (worktree / "swap.cjs").unlink()
    os.symlink(tmp_path / "secret.cjs", worktree / "swap.cjs")
    assert required(sup, sid, "./swap.cjs") == ["OK", "inside"]  # the guest's cache
    assert required(sup, sid, "./src/../swap.cjs")[0] == "MODULE_NOT_FOUND"  # asked of the host again
    # A fresh session sees only the link, and refuses it.
    sid2 = _session(sup, worktree, "swap2")
    assert required(sup, sid2, "./swap.cjs")[0] == "MODULE_NOT_FOUND"
    assert "could not load module" in imported(sup, sid2, "./swap.cjs")
    # An ES module imported after its file became a link out in the same session.
    (worktree / "late.mjs").write_text("export default 'inside';\n")
    assert imported(sup, sid2, "./late.mjs") == 'loaded "inside"'
    (worktree / "late2.mjs").write_text("export default 'inside';\n")
    (worktree / "late2.mjs").unlink()
    os.symlink(tmp_path / "secret.js", worktree / "late2.mjs")
    assert "could not load module './late2.mjs'" in imported(sup, sid2, "./late2.mjs")
    assert_still_works(sup, sid2)


def test_fifos_devices_and_directories_named_like_modules_do_not_hang(sup: Supervisor, worktree: Path) -> None:
    os.mkfifo(worktree / "fifo.js")
    os.mkfifo(worktree / "fifo.cjs")
    os.symlink("/dev/zero", worktree / "zero.js")
    (worktree / "dir.js").mkdir()
    (worktree / "pkgdir").mkdir()
    os.mkfifo(worktree / "pkgdir" / "package.json")  # a package.json that would block a reader
    (worktree / "pkgdir" / "index.js").write_text("module.exports = 'index';\n")
    devices = []
    if os.geteuid() == 0:
        os.mknod(worktree / "null.js", 0o600 | 0o020000, os.makedev(1, 3))
        devices.append("./null.js")
    sid = _session(sup, worktree)
    for spec in ("./fifo.js", "./fifo", "./fifo.cjs", "./zero.js", "./dir.js", *devices):
        assert required(sup, sid, spec)[0] == "MODULE_NOT_FOUND", spec
        assert "could not load module" in imported(sup, sid, spec)
    assert required(sup, sid, "./pkgdir") == ["OK", "index"]  # the FIFO is no package.json
    assert_still_works(sup, sid)


def test_huge_and_undecodable_files(sup: Supervisor, worktree: Path) -> None:
    (worktree / "big.cjs").write_bytes(b"//" + b"x" * (9 * 1024 * 1024))
    (worktree / "latin1.cjs").write_bytes(b"module.exports = '\xe9t\xe9';\n")
    (worktree / "bom.cjs").write_bytes(b"\xef\xbb\xbfmodule.exports = 'bom';\n")
    sid = _session(sup, worktree)
    assert required(sup, sid, "./big.cjs") == ["ERR_MODULE_UNREADABLE", "big.cjs: larger than 8388608 bytes"]
    assert "larger than 8388608 bytes" in imported(sup, sid, "./big.cjs")
    assert required(sup, sid, "./latin1.cjs") == ["ERR_MODULE_UNREADABLE", "latin1.cjs is not valid UTF-8 (byte 18)"]
    assert "not valid UTF-8" in imported(sup, sid, "./latin1.cjs")
    assert required(sup, sid, "./bom.cjs") == ["OK", "bom"]
    assert_still_works(sup, sid)


def test_package_json_mains_that_lead_out(sup: Supervisor, worktree: Path, tmp_path: Path) -> None:
    for name, main in (("abs", str(tmp_path / "secret.cjs")), ("up", "../../secret.cjs"), ("up2", "./../../x.cjs")):
        (worktree / name).mkdir()
        (worktree / name / "package.json").write_text(f'{{"main": "{main}"}}')
    (worktree / "link").mkdir()
    os.symlink(tmp_path / "secret.cjs", worktree / "link" / "target.cjs")
    (worktree / "link" / "package.json").write_text('{"main": "target.cjs"}')
    (worktree / "linkedjson").mkdir()
    os.symlink(tmp_path / "outside" / "package.json", worktree / "linkedjson" / "package.json")
    (tmp_path / "outside" / "package.json").write_text('{"main": "x.cjs"}')
    (worktree / "linkedjson" / "index.cjs").write_text("module.exports = 'index';\n")
    sid = _session(sup, worktree)
    for spec in ("./abs", "./up", "./up2"):
        answer = required(sup, sid, spec)
        assert answer[0] == "ERR_INVALID_PACKAGE_TARGET", (spec, answer)
        assert "leads out of its tree" in answer[1]
        assert "could not load module" in imported(sup, sid, spec)
    assert required(sup, sid, "./link")[0] == "MODULE_NOT_FOUND"
    assert required(sup, sid, "./linkedjson") == ["OK", "index"]  # the linked package.json is absent
    assert_still_works(sup, sid)


@pytest.mark.parametrize("text", ["[" * 200_000 + "]" * 200_000,
                                  '{"main": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000 + "}"],
                         ids=["arrays-200000-deep", "main-an-object-5000-deep"])
def test_a_package_json_nested_deep_is_an_invalid_config(sup: Supervisor, worktree: Path, text: str) -> None:
    """json's C scanner gives up near 1,000 levels with a RecursionError (not a ValueError):
    it must be the documented refusal, not a failed host call."""
    (worktree / "deep").mkdir()
    (worktree / "deep" / "package.json").write_text(text)
    (worktree / "deep" / "index.js").write_text("module.exports = 'index';\n")
    sid = _session(sup, worktree)
    assert required(sup, sid, "./deep") == ["ERR_INVALID_PACKAGE_CONFIG", "deep/package.json is nested too deep"]
    assert required(sup, sid, "./deep/index.js") == ["ERR_INVALID_PACKAGE_CONFIG",
                                                     "deep/package.json is nested too deep"]
    assert imported(sup, sid, "./deep") == "could not load module './deep': deep/package.json is nested too deep"
    assert_still_works(sup, sid)


# ----- TypeScript (the transpiler comes from the real npm registry) ---------------------------


@pytest.fixture
def ts_sup(tmp_path: Path, transpiler_files: Path) -> Iterator[Supervisor]:
    db = tmp_path / "ts.db"
    shutil.copytree(transpiler_files, data_dir(db) / "typescript" / "transpiler")
    s = Supervisor.open(db)
    yield s
    s.close()


@pytest.mark.registry
def test_typescript_that_breaks_the_transpiler_needs_the_registry(ts_sup: Supervisor, worktree: Path) -> None:
    """A .ts file nested so deep the transpiler's parser overflows its stack, one over 512 KiB
    and a path with NUL are refused as errors of their own; the daemon's transpiler and the
    session go on, and the next .ts file strips (the transpiler from the real npm registry)."""
    (worktree / "deep.ts").write_text("export const x: number = " + "(" * 100_000 + "1" + ")" * 100_000 + ";\n")
    (worktree / "huge.ts").write_text("export const s: string = '" + "x" * (600 * 1024) + "';\n")
    (worktree / "ok.ts").write_text("const n: number = 41;\nexport const v: number = n + 1;\n")
    sid = _session(ts_sup, worktree)
    ex = ts_sup.run_file(sid, "deep.ts")
    assert ex.status == "error" and ex.error is not None, ex.status
    assert ex.error["message"].startswith("deep.ts"), ex.error
    ex = ts_sup.run_file(sid, "huge.ts")
    assert ex.status == "error" and ex.error is not None
    assert "TypeScript files are stripped up to 524288" in ex.error["message"]
    huge = required(ts_sup, sid, "./huge.ts")
    assert huge[0] == "ERR_TRANSFORM_FAILED" and "stripped up to 524288" in huge[1], huge
    deep = required(ts_sup, sid, "./deep.ts")
    assert deep[0] in ("ERR_TRANSFORM_FAILED", "ERR_INVALID_TYPESCRIPT_SYNTAX"), deep
    with pytest.raises(InvalidPath):
        ts_sup.run_file(sid, "ok\0.ts")
    assert required(ts_sup, sid, "./ok\0.ts")[0] == "ERR_INVALID_ARG_VALUE"
    ex = ts_sup.run_file(sid, "ok.ts")
    assert ex.status == "ok", ex.error
    assert ex.result is not None and ex.result["json"] == {"v": 42}
    assert imported(ts_sup, sid, "./ok.ts") == "loaded 42"
    assert_still_works(ts_sup, sid)
