"""ES module syntax and CommonJS export names, read past strings, comments, templates and regexes."""

from __future__ import annotations

import pytest

from supervisor.imports.module_syntax import commonjs_exports, uses_module_syntax


@pytest.mark.parametrize("src", [
    "import x from './x.js';",
    "import {a, b as c} from 'y'",
    "import * as ns from 'z'",
    "import 'side-effect'",
    "export const a = 1;",
    "export default function () {}",
    "export { a as b };",
    "const u = import.meta.url;",
    "#!/usr/bin/env node\nexport const a = 1",
    "const s = `${'x'}`; export const t = s;",
    "const r = /'/; export const a = 1;",  # a quote inside a regex is no string
    "x = a / b; export const y = 1; // /",
    "function f() { return /`/.test(q); }\nexport { f };",
])
def test_module_syntax_is_found(src: str) -> None:
    assert uses_module_syntax(src)


@pytest.mark.parametrize("src", [
    "const m = import('./x.js');",
    "// import x from 'y'\nconsole.log(1)",
    "/* export const a = 1 */",
    "const s = 'import x from \"y\"';",
    'const s = "export default 1";',
    "const t = `import ${a} from 'b'`;",
    "const t = `${`export const z = 1`}`;",
    "obj.import = 1; obj.export = 2;",
    "const o = { import: 1, export: 2 };",
    "const r = /import x from 'y'/g;",
    "if (a) { b() }\n/export default/.test(s)",
    "module.exports = { a: 1 };",
    "",
])
def test_no_module_syntax_is_seen_where_there_is_none(src: str) -> None:
    assert not uses_module_syntax(src)


def test_commonjs_export_names_of_the_usual_shapes() -> None:
    src = """
    'use strict';
    exports.alpha = 1;
    exports['beta'] = 2;
    module.exports.gamma = 3;
    Object.defineProperty(exports, "delta", { enumerable: true, get: () => 4 });
    Object.defineProperty(module.exports, '__esModule', { value: true });
    exports.default = 5;
    exports.alpha = 6;
    if (exports.alpha == 1) {}
    """
    assert commonjs_exports(src) == ["alpha", "beta", "gamma", "delta"]


def test_an_object_literal_assigned_to_module_exports() -> None:
    src = "module.exports = { a, b: f(1, {x: 2}), 'c': [1, 2], d() { return 1 }, get e() { return 2 }, ...rest, f };"
    assert commonjs_exports(src) == ["a", "b", "c", "d", "e", "f"]


def test_names_in_strings_comments_and_other_objects_are_not_exports() -> None:
    src = """
    // exports.no1 = 1
    const s = "exports.no2 = 2";
    const t = `module.exports.no3 = ${1}`;
    other.exports.no4 = 4;
    exports.yes = /exports.no5 = 5/;
    """
    assert commonjs_exports(src) == ["yes"]


def test_unterminated_text_ends_the_reading_without_error() -> None:
    for src in ("exports.a = 1; 'open", "exports.a = 1; `open ${", "exports.a = 1; /* open", "/[", "}}}"):
        assert commonjs_exports(src)[:1] in (["a"], [])
        uses_module_syntax(src)
