"""TypeScript files in real sessions, one-shot runs and `vm-system run`: types stripped by the
pinned transpiler inside a sandbox, errors on the `.ts` file's own lines, the output cached by
content. The transpiler's packages come from the REAL npm registry (marker `registry`: these
tests need it), fetched once per module into a cache the tests' daemons share; the tests of a
registry that serves anything else than the pinned bytes use a local registry-shaped server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor import Supervisor
from supervisor.boot import data_dir
from supervisor.packages import RegistryClient, registry_url
from supervisor.typescript import TRANSPILER_LOCK, TypeScript, transpiler_base

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages"))
from registry_server import LocalRegistry, make_tarball  # noqa: E402

POINT_TS = """interface Point { x: number; y: number }
enum Axis { X, Y }
function length(p: Point): number {
  return Math.sqrt(p.x * p.x + p.y * p.y);
}
const axis: Axis = Axis.Y;
console.log(length({ x: 3, y: 4 }), axis);
export const answer: number = length({ x: 6, y: 8 });
"""


def _supervisor(tmp_path: Path, transpiler_files: Path) -> Supervisor:
    db = tmp_path / "db.sqlite"
    shutil.copytree(transpiler_files, data_dir(db) / "typescript" / "transpiler")
    return Supervisor.open(db)


@pytest.fixture
def sup(tmp_path: Path, transpiler_files: Path) -> Iterator[Supervisor]:
    s = _supervisor(tmp_path, transpiler_files)
    yield s
    s.close()


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    tree = tmp_path / "wt"
    tree.mkdir()
    return tree


def _session(sup: Supervisor, worktree: Path) -> str:
    template = sup.templates.create("ts")
    session = sup.create_session(template.id, "w", "c", str(worktree))
    assert session.status == "ready", session.last_error
    return session.id


def _console(sup: Supervisor, execution_id: str) -> list[Any]:
    return [e.payload.get("text") for e in sup.store.list_events(execution_id) if e.type == "console"]


@pytest.mark.registry
def test_run_file_of_a_ts_file_strips_its_types(sup: Supervisor, worktree: Path) -> None:
    (worktree / "point.ts").write_text(POINT_TS)
    execution = sup.run_file(_session(sup, worktree), "point.ts")
    assert execution.status == "ok", execution.error
    assert execution.result is not None and execution.result["json"] == {"answer": 10}
    assert _console(sup, execution.id) == ["5 1"]


@pytest.mark.registry
def test_a_runtime_error_points_at_the_ts_line(sup: Supervisor, worktree: Path) -> None:
    source = "type T = { n: number };\nconst t: T = { n: 1 };\n\n\nthrow new Error(`at five ${t.n}`);\n"
    (worktree / "fails.ts").write_text(source)
    execution = sup.run_file(_session(sup, worktree), "fails.ts")
    assert execution.status == "error"
    assert execution.error is not None and execution.error["message"] == "at five 1"
    assert "fails.ts:5:" in execution.error["stack"]


@pytest.mark.registry
def test_a_syntax_error_is_an_execution_error_naming_line_and_column(sup: Supervisor, worktree: Path) -> None:
    (worktree / "bad.ts").write_text("const ok: number = 1;\nconst x: number = ;\n")
    execution = sup.run_file(_session(sup, worktree), "bad.ts")
    assert execution.status == "error"
    assert execution.error is not None and execution.error["name"] == "SyntaxError"
    assert execution.error["message"].startswith("bad.ts:2:19: ")


@pytest.mark.registry
def test_imports_of_ts_files_extensionless_and_from_javascript(sup: Supervisor, worktree: Path) -> None:
    (worktree / "lib").mkdir()
    (worktree / "lib" / "double.ts").write_text("export function double(x: number): number { return 2 * x; }\n")
    (worktree / "lib" / "cjs.cts").write_text("const k: number = 3;\nmodule.exports = { k };\n")
    (worktree / "main.mjs").write_text("import { double } from './lib/double';\nimport c from './lib/cjs.cts';\n"
                                       "export const v = [double(21), c.k, require('./lib/cjs.cts').k];\n")
    execution = sup.run_file(_session(sup, worktree), "main.mjs")
    assert execution.status == "ok", execution.error
    assert execution.result is not None and execution.result["json"] == {"v": [42, 3, 3]}


@pytest.mark.registry
def test_an_imported_ts_file_that_does_not_parse_throws_its_syntax_error(sup: Supervisor, worktree: Path) -> None:
    (worktree / "broken.ts").write_text("export const x: = 1;\n")
    (worktree / "main.mjs").write_text("import { x } from './broken.ts';\nexport default x;\n")
    execution = sup.run_file(_session(sup, worktree), "main.mjs")
    assert execution.status == "error"
    assert execution.error is not None and "broken.ts:1:" in execution.error["message"]


@pytest.mark.registry
def test_the_stripped_output_is_cached_by_content_across_daemons(tmp_path: Path, transpiler_files: Path,
                                                                 worktree: Path) -> None:
    (worktree / "point.ts").write_text(POINT_TS)
    first = _supervisor(tmp_path, transpiler_files)
    try:
        assert first.run_file(_session(first, worktree), "point.ts").status == "ok"
    finally:
        first.close()
    stripped = data_dir(tmp_path / "db.sqlite") / "typescript" / "stripped"
    [cached] = list(stripped.glob("*.js"))
    assert "interface" not in cached.read_text() and "length(p)" in cached.read_text()
    # What the cache holds is what runs: a second daemon never asks the transpiler.
    cached.write_text(cached.read_text().replace("6, y: 8", "5, y: 12"))
    again = _supervisor(tmp_path / "again", transpiler_files)
    shutil.copytree(stripped, data_dir(tmp_path / "again" / "db.sqlite") / "typescript" / "stripped",
                    dirs_exist_ok=True)
    try:
        execution = again.run_file(_session(again, worktree), "point.ts")
        assert execution.result is not None and execution.result["json"] == {"answer": 13}
    finally:
        again.close()


@pytest.mark.registry
def test_a_hostile_ts_file_stops_in_the_transpilers_sandbox(transpiler_files: Path, tmp_path: Path) -> None:
    ts = TypeScript(transpiler_base(transpiler_files, lambda: RegistryClient(registry_url())))
    try:
        deep = "const x: number = " + "(" * 200_000 + "1" + ")" * 200_000 + ";"
        out = ts.javascript(deep, "deep.ts")
        assert out.startswith("throw new ") and "deep.ts" in out
        # The transpiler still works for the next file.
        assert "interface" not in ts.javascript(POINT_TS, "point.ts")
    finally:
        ts.close()


@pytest.mark.registry
def test_vm_system_run_embedded_runs_a_ts_file(tmp_path: Path, transpiler_files: Path) -> None:
    cache = tmp_path / "xdg-cache"
    shutil.copytree(transpiler_files, cache / "vm-system" / "typescript" / "transpiler")
    (tmp_path / "util.ts").write_text("export const greet = (n: string): string => `hi ${n}`;\n")
    (tmp_path / "main.ts").write_text("import { greet } from './util';\nconsole.log(greet('ts' as string));\n")
    done = subprocess.run([sys.executable, "-m", "supervisor.adapters.cli", "run", str(tmp_path / "main.ts")],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(cache), "HOME": str(tmp_path)},
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "hi ts"


def _run_ts_against(registry: LocalRegistry, tmp_path: Path, worktree: Path) -> Any:
    sup = Supervisor.open(tmp_path / "db.sqlite", npm_registry=registry.url)
    try:
        (worktree / "a.ts").write_text("const n: number = 1;\n")
        return sup.run_file(_session(sup, worktree), "a.ts")
    finally:
        sup.close()


def test_a_registry_serving_other_bytes_than_the_pinned_transpiler_is_refused(
        tmp_path: Path, worktree: Path) -> None:
    with LocalRegistry() as registry:
        for locked in TRANSPILER_LOCK:
            registry.publish(locked.name, locked.version,
                             {"index.js": b"globalThis.pwned = true; module.exports = {};"})
        execution = _run_ts_against(registry, tmp_path, worktree)
    assert execution.status == "error"
    assert execution.error is not None and "integrity" in execution.error["message"]
    assert not list((data_dir(tmp_path / "db.sqlite") / "typescript" / "transpiler").glob("*.tgz"))


def test_a_registry_lying_about_the_pinned_integrity_is_refused_before_unpacking(
        tmp_path: Path, worktree: Path) -> None:
    with LocalRegistry() as registry:
        for locked in TRANSPILER_LOCK:
            data = make_tarball({"package.json": b'{"name": "x", "version": "1.0.0"}'})
            path = registry.tarball_path(locked.name, locked.version)
            registry.publish(locked.name, locked.version, tarball=data,
                             dist={"tarball": registry.url + path, "integrity": locked.integrity})
        execution = _run_ts_against(registry, tmp_path, worktree)
    assert execution.status == "error"
    assert execution.error is not None and "does not match its sha512 integrity" in execution.error["message"]


@pytest.mark.registry
def test_an_import_of_types_only_is_removed_as_tsc_does(sup: Supervisor, worktree: Path) -> None:
    (worktree / "types.ts").write_text("export interface Shape { area(): number }\nexport type Id = string;\n")
    (worktree / "main.ts").write_text("import { Shape, Id } from './types';\nconst id: Id = 'sq';\n"
                                      "const s: Shape = { area: () => 4 };\nexport const v = [id, s.area()];\n")
    execution = sup.run_file(_session(sup, worktree), "main.ts")
    assert execution.status == "ok", execution.error
    assert execution.result is not None and execution.result["json"] == {"v": ["sq", 4]}


@pytest.mark.registry
def test_a_one_shot_run_of_a_ts_path(tmp_path: Path, transpiler_files: Path) -> None:
    db = tmp_path / "db.sqlite"
    shutil.copytree(transpiler_files, data_dir(db) / "typescript" / "transpiler")
    root = tmp_path / "root"
    root.mkdir()
    (root / "job.mts").write_text("const n: number = await Promise.resolve(41);\nexport const v = n + 1;\n")
    sup = Supervisor.open(db, run_root=root)
    try:
        execution = sup.run(path="job.mts")
    finally:
        sup.close()
    assert execution.status == "ok", execution.error
    assert execution.result is not None and execution.result["json"] == {"v": 42}


@pytest.mark.parametrize("registry", ["ftp://nowhere", "http://127.0.0.1:1"])
def test_vm_system_run_without_a_usable_registry_says_so_in_one_error(tmp_path: Path, registry: str) -> None:
    (tmp_path / "a.ts").write_text("const n: number = 1;\n")
    (tmp_path / "b.js").write_text("console.log('plain')\n")
    env = {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path),
           "VM_SYSTEM_NPM_REGISTRY": registry}

    def run(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "supervisor.adapters.cli", "run", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=120, env=env,
                              cwd=Path(__file__).resolve().parents[2])

    done = run("a.ts")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Uncaught Error: a.ts: the TypeScript transpiler is unavailable: " in done.stderr
    # JavaScript never needs the registry.
    plain = run("b.js")
    assert (plain.returncode, plain.stdout) == (0, "plain\n"), plain.stderr
