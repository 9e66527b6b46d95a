"""The module loader hook: imports go through the embedding program's loader, or nowhere."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sandbox import Limits, ModuleRefused, Sandbox


class DictLoader:
    """Modules from a dict of path -> source; relative specifiers against the importer."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.asked: list[tuple[str, ...]] = []

    def resolve(self, specifier: str, referrer: str) -> str:
        self.asked.append(("resolve", specifier, referrer))
        if specifier.startswith("./"):
            base = referrer.rsplit("/", 1)[0] if "/" in referrer else ""
            return f"{base}/{specifier[2:]}"
        if specifier == "forbidden":
            raise ModuleRefused("it is not on the allow list")
        return f"/{specifier}"

    def load(self, resolved: str) -> str:
        self.asked.append(("load", resolved))
        return self.files[resolved]


FILES = {
    "/a.js": "export const a = 1; export { b } from './b.js';",
    "/b.js": "import { a } from './a.js'; export const b = 2; export const seenA = () => a;",
    "/bad.js": "export const = ;",
    "/throws.js": "throw new TypeError('at load');",
}


def _refusal(sb: Sandbox, specifier: str) -> str:
    out = sb.eval(f"import({json.dumps(specifier)}).then(() => 'loaded', e => e.name + ': ' + e.message)")
    assert out.status == "ok", out.error
    return out.value["json"]  # type: ignore[index,no-any-return]


def test_static_and_dynamic_imports_go_through_the_loader_once_per_module() -> None:
    loader = DictLoader(FILES)
    with Sandbox(modules=loader) as sb:
        out = sb.eval_module("import { a, b } from './a.js'; import { seenA } from './b.js';"
                             "export const r = [a, b, seenA()];")
        assert out.value["json"] == {"r": [1, 2, 1]}  # type: ignore[index]
        assert [x for x in loader.asked if x[0] == "load"] == [("load", "/a.js"), ("load", "/b.js")]
        assert ("resolve", "./a.js", "<module>") in loader.asked
        assert ("resolve", "./b.js", "/a.js") in loader.asked
        again = sb.eval("import('./a.js').then(m => m.a + m.b)")
        assert again.value["json"] == 3  # type: ignore[index]
        assert [x for x in loader.asked if x[0] == "load"] == [("load", "/a.js"), ("load", "/b.js")]


def test_without_a_loader_every_import_is_refused() -> None:
    with Sandbox() as sb:
        assert _refusal(sb, "./a.js") == "ReferenceError: could not load module './a.js'"
        out = sb.eval_module("import x from 'anything'; export default x")
        assert out.error is not None and "could not load module" in out.error.message


@pytest.mark.parametrize("specifier", ["qjs:std", "qjs:os", "qjs:bjson"])
def test_qjs_modules_stay_unreachable_whatever_the_loader_says(specifier: str) -> None:
    class Yes:
        def resolve(self, specifier: str, referrer: str) -> str:
            return specifier

        def load(self, resolved: str) -> str:
            return "export default 'loaded'"

    class Redirect(Yes):
        def resolve(self, specifier: str, referrer: str) -> str:
            return "qjs:std"

    with Sandbox(modules=Yes()) as sb:
        assert _refusal(sb, specifier) == f"ReferenceError: could not load module '{specifier}': not allowed"
        assert _refusal(sb, "innocent") == "loaded"
    with Sandbox(modules=Redirect()) as sb:
        assert _refusal(sb, "innocent") == "ReferenceError: could not load module 'innocent': not allowed"


def test_what_the_loader_refuses_or_fails_at_names_the_specifier_and_nothing_else() -> None:
    class Broken(DictLoader):
        def load(self, resolved: str) -> Any:
            if resolved == "/crash.js":
                raise OSError("/home/secret/path is unreadable")
            if resolved == "/bytes.js":
                return b"export default 1"
            return super().load(resolved)

    with Sandbox(modules=Broken(FILES)) as sb:
        assert _refusal(sb, "forbidden") == ("ReferenceError: could not load module 'forbidden': "
                                             "it is not on the allow list")
        crash = _refusal(sb, "crash.js")
        assert crash == "ReferenceError: could not load module '/crash.js'"
        assert "secret" not in crash
        assert _refusal(sb, "missing.js") == "ReferenceError: could not load module '/missing.js'"
        assert _refusal(sb, "bytes.js").endswith("the loader gave no source text")
        assert _refusal(sb, "bad.js").startswith("SyntaxError: ")
        assert _refusal(sb, "throws.js") == "TypeError: at load"
        assert sb.eval("1 + 1").value["json"] == 2  # type: ignore[index]


def test_the_loaders_time_is_not_the_scripts_cpu_time() -> None:
    class Slow(DictLoader):
        def load(self, resolved: str) -> str:
            end = time.thread_time() + 0.3
            while time.thread_time() < end:
                pass
            return "export default 7"

    with Sandbox(modules=Slow({})) as sb:
        out = sb.eval_module("import x from 'slow'; export { x }", limits=Limits(cpu_ms=100, wall_ms=10_000))
        assert out.status == "ok", out.error
        assert out.value["json"] == {"x": 7}  # type: ignore[index]


def test_a_loaded_module_can_use_timers_and_host_functions() -> None:
    files = {"/tick.js": "export const later = new Promise(r => setTimeout(() => r(host.n()), 5));"}
    with Sandbox(modules=DictLoader(files), functions={"n": lambda: 9}) as sb:
        out = sb.eval_module("import { later } from 'tick.js'; export const v = await later;")
        assert out.value["json"] == {"v": 9}  # type: ignore[index]
