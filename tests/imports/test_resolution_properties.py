"""Properties of resolution (hypothesis): whatever the specifier and the referrer, a resolved
name stands for a file of one of the session's trees, found there, and never for anything
above a tree's root; a refusal is an ImportRefused with a code, never another exception.

The trees are built to tempt: files named like the parent directory of the worktree, packages
whose manifests point up and out, `exports` patterns, names with dots."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from supervisor.imports.resolution import ImportRefused, Package, Resolver, ResolverSettings, split_path
from supervisor.imports.tree import MemoryTree

WORKTREE = MemoryTree({
    "a.js": b"", "src/b.mjs": b"", "src/c/index.js": b"", "data.json": b"{}", "..js": b"",
    "pkg/package.json": b'{"main": "../a.js"}', "up/package.json": b'{"main": "../../../etc/passwd"}',
    "secret/s.cjs": b"",
})
PACKAGES = {
    "lib": Package("1.0.0", MemoryTree({
        "package.json": json.dumps({"exports": {".": "./index.js", "./sub/*": "./sub/*.js",
                                                "./up": "../outside.js"}}).encode(),
        "index.js": b"", "sub/x.js": b"", "private.js": b""})),
    "@s/p": Package("2.0.0", MemoryTree({"package.json": b'{"main": "./dist/m.js"}', "dist/m.js": b"",
                                          "dist/other.js": b""})),
    "plain": Package("0.1.0", MemoryTree({"index.js": b"", "x/y.cjs": b""})),
}
TREES = [WORKTREE, *(p.tree for p in PACKAGES.values())]

# Mostly the trees' own names (so that many specifiers resolve), with the tempting ones mixed in.
REAL = ["src", "c", "b", "b.mjs", "a", "a.js", "index", "index.js", "sub", "x", "y.cjs", "dist", "m",
        "other", "private", "private.js", "data", "data.json", "pkg", "up", "secret", "s.cjs", "..", "."]
HOSTILE = ["", "%2e%2e", "\\..", "..\\", "\u2024\u2024", "node:fs", "pkg:lib@1.0.0", "vm:fs", "..js",
           "etc", "passwd", "outside.js"]
PREFIXES = ["./", "../", "/", "", "lib/", "lib", "@s/p/", "@s/p", "plain/", "plain", "fs", "node:"]
segment = st.one_of(st.sampled_from(REAL), st.sampled_from(REAL), st.sampled_from(REAL), st.sampled_from(HOSTILE))
specifiers = st.one_of(
    st.tuples(st.sampled_from(PREFIXES), st.lists(segment, max_size=4).map("/".join)).map("".join),
    st.text(max_size=40),
)
referrers = st.sampled_from(["", "<repl>", "a.js", "src/b.mjs", "src/c/index.js", "../x", "/etc/x",
                             "pkg:lib@1.0.0/index.js", "pkg:lib@1.0.0/sub/x.js", "pkg:@s/p@2.0.0/dist/m.js",
                             "pkg:plain@0.1.0/x/y.cjs", "pkg:nope@1.0.0/x.js", "vm:fs"])


@settings(max_examples=1500, deadline=None)
@example("lib/sub/x", "", "import", False)
@example("../private", "pkg:lib@1.0.0/sub/x.js", "import", False)
@example("lib/private.js", "", "require", False)
@example("lib/sub/../private", "a.js", "import", False)
@example("lib/up", "", "import", False)
@example("./pkg", "", "require", False)
@example("./up", "src/b.mjs", "import", False)
@example("../../a.js", "pkg:@s/p@2.0.0/dist/m.js", "import", False)
@example("/../secret/s.cjs", "a.js", "require", True)
@given(specifier=specifiers, referrer=referrers, mode=st.sampled_from(["import", "require"]),
       absolute=st.booleans())
def test_a_resolved_name_is_a_file_of_a_tree_and_a_refusal_has_a_code(
        specifier: str, referrer: str, mode: str, absolute: bool) -> None:
    resolver = Resolver(WORKTREE, packages=PACKAGES, modules=("fs",),
                        settings=ResolverSettings(roots=(".", "src"), allow_absolute_repo_imports=absolute))
    try:
        name = resolver.resolve(specifier, referrer, mode)  # type: ignore[arg-type]
    except ImportRefused as refused:
        assert refused.code and refused.message
        return
    if name.startswith("vm:"):
        assert name == "vm:fs"
        return
    location = resolver.locate(name)
    assert any(location.tree is tree for tree in TREES)
    assert split_path(location.path) == location.path.split("/")  # normalised, never climbing
    assert location.tree.kind(location.path) == "file"
    # Exports keep a package's private file private from everyone else, whatever the specifier
    # (its own files reach each other by relative paths, as in Node).
    if not referrer.startswith("pkg:lib@1.0.0/"):
        assert not (location.package == "lib@1.0.0" and location.path == "private.js")
