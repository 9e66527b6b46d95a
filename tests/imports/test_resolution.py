"""Resolution inside trees: a real worktree on disk (symlinks and all), packages in dict trees."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.imports.resolution import ImportRefused, Package, Resolver, ResolverSettings
from supervisor.imports.tree import MemoryTree
from supervisor.imports.worktree_tree import WorktreeTree


def DictTree(files: dict[str, str]) -> MemoryTree:  # noqa: N802 - reads as the tree it builds
    """A tree of these texts (UTF-8)."""
    return MemoryTree({path: text.encode() for path, text in files.items()})


LODASH = DictTree({
    "package.json": '{"name": "lodash", "main": "lodash.js"}',
    "lodash.js": "module.exports = {};",
    "fp.js": "module.exports = {};",
    "fp/map.js": "module.exports = {};",
})
DUAL = DictTree({
    "package.json": """{"name": "dual", "exports": {
        ".": {"import": "./esm/index.mjs", "require": "./cjs/index.cjs"},
        "./feature": {"browser": "./browser/feature.js", "default": "./feature.js"},
        "./utils/*": "./lib/utils/*.js",
        "./secret": null,
        "./escape": "../outside.js",
        "./absent": "./nothing-here.js"}}""",
    "esm/index.mjs": "export default 1;",
    "cjs/index.cjs": "module.exports = 1;",
    "browser/feature.js": "",
    "feature.js": "",
    "lib/utils/strings.js": "",
    "internal.js": "",
})
SUGAR = DictTree({"package.json": '{"exports": {"import": "./a.mjs", "default": "./a.cjs"}}',
                  "a.mjs": "", "a.cjs": ""})
MODULE_FIELD = DictTree({"package.json": '{"module": "es/index.js", "main": "lib/index.js"}',
                         "es/index.js": "", "lib/index.js": ""})
OUTSIDE = DictTree({"package.json": '{"main": "../../etc/passwd"}', "index.js": ""})
INDEX_ONLY = DictTree({"index.js": "", "sub/x.js": ""})
SCOPED = DictTree({"package.json": '{"main": "./dist/index.js"}', "dist/index.js": "",
                   "dist/dep.js": "require('missing-dep')"})
PACKAGES = {
    "lodash": Package("4.17.21", LODASH), "dual": Package("1.0.0", DUAL),
    "sugar": Package("2.0.0", SUGAR), "modfield": Package("1.0.0", MODULE_FIELD),
    "outside": Package("0.0.1", OUTSIDE), "index-only": Package("3.0.0", INDEX_ONLY),
    "@scope/pkg": Package("1.2.3", SCOPED),
}


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    root = tmp_path / "wt"
    (root / "src" / "lib").mkdir(parents=True)
    (root / "src" / "a.js").write_text("")
    (root / "src" / "b.mjs").write_text("")
    (root / "src" / "c.cjs").write_text("")
    (root / "src" / "data.json").write_text("{}")
    (root / "src" / "lib" / "index.js").write_text("")
    (root / "src" / "withmain").mkdir()
    (root / "src" / "withmain" / "package.json").write_text('{"main": "entry.js"}')
    (root / "src" / "withmain" / "entry.js").write_text("")
    (root / "src" / "types.ts").write_text("")
    (root / "top.js").write_text("")
    (tmp_path / "secret.js").write_text("")
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir" / "x.js").write_text("")
    os.symlink(tmp_path / "secret.js", root / "src" / "link-out.js")
    os.symlink(tmp_path / "outdir", root / "src" / "dir-out")
    os.symlink("a.js", root / "src" / "link-in.js")  # relative: absolute targets are refused, as by fs
    return root


@pytest.fixture
def resolver(worktree: Path) -> Iterator[Resolver]:
    tree = WorktreeTree(str(worktree))
    yield Resolver(tree, packages=PACKAGES, modules=["fs"])
    tree.close()


def refused(resolver: Resolver, spec: str, referrer: str = "src/a.js", mode: str = "import") -> ImportRefused:
    with pytest.raises(ImportRefused) as info:
        resolver.resolve(spec, referrer, mode)  # type: ignore[arg-type]
    return info.value


@pytest.mark.parametrize(("spec", "expected"), [
    ("./a.js", "src/a.js"), ("./a", "src/a.js"), ("./b", "src/b.mjs"), ("./c", "src/c.cjs"),
    ("./data", "src/data.json"), ("./data.json", "src/data.json"), ("./lib", "src/lib/index.js"),
    ("./lib/", "src/lib/index.js"), ("./withmain", "src/withmain/entry.js"), ("../top", "top.js"),
    ("./lib/../a", "src/a.js"), ("./link-in.js", "src/link-in.js"), (".", "src/lib/index.js"),
])
def test_relative_specifiers(resolver: Resolver, spec: str, expected: str) -> None:
    referrer = "src/lib/index.js" if spec == "." else "src/a.js"
    assert resolver.resolve(spec, referrer, "import") == expected


def test_a_referrer_that_is_no_file_imports_from_the_root(resolver: Resolver) -> None:
    for referrer in ("<repl>", "<run>", "library:x", ""):
        assert resolver.resolve("./top", referrer, "import") == "top.js"
        assert resolver.resolve("./src/a", referrer, "require") == "src/a.js"


@pytest.mark.parametrize("spec", ["../../secret.js", "../../../etc/passwd", "./../../x", "./lib/../../../x"])
def test_climbing_above_the_worktree_is_refused(resolver: Resolver, spec: str) -> None:
    err = refused(resolver, spec)
    assert err.code == "ERR_ACCESS_DENIED" and "leads out of the worktree" in err.message


@pytest.mark.parametrize("spec", ["./link-out.js", "./link-out", "./dir-out/x.js", "./dir-out"])
def test_symlinks_that_lead_out_read_as_absent(resolver: Resolver, spec: str) -> None:
    assert refused(resolver, spec).code == "MODULE_NOT_FOUND"


def test_absolute_paths_only_with_the_setting(worktree: Path) -> None:
    tree = WorktreeTree(str(worktree))
    closed = Resolver(tree)
    assert refused(closed, "/src/a.js").code == "ERR_ACCESS_DENIED"
    assert refused(closed, "/etc/passwd").code == "ERR_ACCESS_DENIED"
    opened = Resolver(tree, settings=ResolverSettings(allow_absolute_repo_imports=True))
    assert opened.resolve("/src/a", "src/lib/index.js", "import") == "src/a.js"
    assert refused(opened, "/../x").code == "ERR_ACCESS_DENIED"
    assert refused(opened, "/etc/passwd").code == "MODULE_NOT_FOUND"  # the worktree's /etc
    tree.close()


@pytest.mark.parametrize("spec", ["qjs:std", "qjs:os", "file:///etc/passwd", "data:text/javascript,export default 1",
                                  "http://example.com/x.js", "https://cdn/x.mjs", "C:/x.js", "javascript:1"])
def test_urls_are_refused(resolver: Resolver, spec: str) -> None:
    for mode in ("import", "require"):
        assert refused(resolver, spec, mode=mode).code == "ERR_UNSUPPORTED_ESM_URL_SCHEME"


@pytest.mark.parametrize(("spec", "why"), [
    ("./a\0.js", "NUL"), ("x" * 5000, "at most 4096"), ("./\ud800.js", "lone surrogate"), ("", "empty"),
])
def test_malformed_specifiers_are_refused(resolver: Resolver, spec: str, why: str) -> None:
    err = refused(resolver, spec)
    assert err.code == "ERR_INVALID_ARG_VALUE" and why in err.message


def test_builtins(resolver: Resolver) -> None:
    assert resolver.resolve("fs", "src/a.js", "import") == "vm:fs"
    assert resolver.resolve("node:fs", "src/a.js", "require") == "vm:fs"
    assert refused(resolver, "exec").code == "ERR_MODULE_NOT_ENABLED"
    assert refused(resolver, "node:path").code == "MODULE_NOT_FOUND"


def test_packages_main_subpaths_and_scoped_names(resolver: Resolver) -> None:
    r = resolver.resolve
    assert r("lodash", "src/a.js", "require") == "pkg:lodash@4.17.21/lodash.js"
    assert r("lodash/fp", "src/a.js", "require") == "pkg:lodash@4.17.21/fp.js"
    assert r("lodash/fp/map", "src/a.js", "import") == "pkg:lodash@4.17.21/fp/map.js"
    assert r("@scope/pkg", "src/a.js", "import") == "pkg:@scope/pkg@1.2.3/dist/index.js"
    assert r("index-only", "src/a.js", "import") == "pkg:index-only@3.0.0/index.js"
    assert r("modfield", "src/a.js", "import") == "pkg:modfield@1.0.0/es/index.js"
    assert r("modfield", "src/a.js", "require") == "pkg:modfield@1.0.0/lib/index.js"
    # Relative imports inside a package stay in it.
    assert r("./fp", "pkg:lodash@4.17.21/lodash.js", "require") == "pkg:lodash@4.17.21/fp.js"
    assert r("../index", "pkg:index-only@3.0.0/sub/x.js", "require") == "pkg:index-only@3.0.0/index.js"
    err = refused(resolver, "../../src/a.js", referrer="pkg:index-only@3.0.0/sub/x.js")
    assert err.code == "ERR_ACCESS_DENIED" and "package index-only@3.0.0" in err.message
    # A package's own bare imports go to the packages only, and name what is missing.
    err = refused(resolver, "missing-dep", referrer="pkg:@scope/pkg@1.2.3/dist/dep.js")
    assert err.code == "MODULE_NOT_FOUND" and "'missing-dep'" in err.message
    assert "@scope/pkg@1.2.3" in err.message
    assert r("lodash", "pkg:@scope/pkg@1.2.3/dist/dep.js", "require") == "pkg:lodash@4.17.21/lodash.js"
    # Absolute paths are never a package's.
    assert refused(resolver, "/x", referrer="pkg:lodash@4.17.21/lodash.js").code == "ERR_ACCESS_DENIED"


def test_exports_conditions_subpaths_and_patterns(resolver: Resolver) -> None:
    r = resolver.resolve
    assert r("dual", "src/a.js", "import") == "pkg:dual@1.0.0/esm/index.mjs"
    assert r("dual", "src/a.js", "require") == "pkg:dual@1.0.0/cjs/index.cjs"
    assert r("dual/feature", "src/a.js", "import") == "pkg:dual@1.0.0/browser/feature.js"
    assert r("dual/utils/strings", "src/a.js", "import") == "pkg:dual@1.0.0/lib/utils/strings.js"
    assert r("sugar", "src/a.js", "import") == "pkg:sugar@2.0.0/a.mjs"
    assert r("sugar", "src/a.js", "require") == "pkg:sugar@2.0.0/a.cjs"
    for spec in ("dual/internal.js", "dual/internal", "dual/secret", "dual/package.json"):
        assert refused(resolver, spec).code == "ERR_PACKAGE_PATH_NOT_EXPORTED", spec
    assert refused(resolver, "dual/escape").code == "ERR_INVALID_PACKAGE_TARGET"
    assert refused(resolver, "dual/utils/../../../x").code in ("ERR_INVALID_PACKAGE_TARGET",
                                                               "ERR_PACKAGE_PATH_NOT_EXPORTED")
    assert refused(resolver, "dual/absent").code == "MODULE_NOT_FOUND"


def test_a_package_main_pointing_outside_it_is_refused(resolver: Resolver) -> None:
    err = refused(resolver, "outside")
    assert err.code == "ERR_INVALID_PACKAGE_TARGET" and "leads out" in err.message


def test_bare_names_that_are_no_package_look_under_the_roots(worktree: Path) -> None:
    tree = WorktreeTree(str(worktree))
    default = Resolver(tree)
    assert default.resolve("src/a", "<repl>", "import") == "src/a.js"
    assert refused(default, "left-pad").message == "Cannot find module 'left-pad'"
    rooted = Resolver(tree, settings=ResolverSettings(roots=("src",)))
    assert rooted.resolve("lib", "top.js", "import") == "src/lib/index.js"
    assert rooted.resolve("withmain", "top.js", "require") == "src/withmain/entry.js"
    tree.close()


def test_extensions_follow_the_settings_then_cjs_and_json(worktree: Path) -> None:
    tree = WorktreeTree(str(worktree))
    only_mjs = Resolver(tree, settings=ResolverSettings(extensions=(".mjs",)))
    assert only_mjs.extensions == (".mjs", ".cjs", ".json")
    assert refused(only_mjs, "./a").code == "MODULE_NOT_FOUND"  # a.js: .js is not listed
    assert only_mjs.resolve("./c", "src/a.js", "import") == "src/c.cjs"
    assert refused(only_mjs, "./types").code == "MODULE_NOT_FOUND"
    typed = Resolver(tree, typescript=True)
    assert typed.extensions == (".js", ".mjs", ".cjs", ".json", ".ts", ".mts", ".cts")
    assert typed.resolve("./types", "src/a.js", "import") == "src/types.ts"
    tree.close()


def test_worktree_files_named_like_reserved_modules_are_refused(tmp_path: Path) -> None:
    (tmp_path / "vm:fs.js").write_text("")
    tree = WorktreeTree(str(tmp_path))
    assert refused(Resolver(tree), "./vm:fs.js", referrer="<repl>").code == "ERR_ACCESS_DENIED"
    tree.close()


def test_a_package_name_or_version_that_would_confuse_the_names_is_refused() -> None:
    with pytest.raises(ValueError):
        Resolver(DictTree({}), packages={"a/b/c": Package("1", DictTree({}))})
    with pytest.raises(ValueError):
        Resolver(DictTree({}), packages={"a": Package("1/2", DictTree({}))})
