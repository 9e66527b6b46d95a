"""Describing a value costs what its caps allow, not what its size is (issue 11, part 3).

No wall-clock assertions: each value is described under a CPU limit that is generous for the
bounded describers (they need a few ms, at most a few hundred for the JSON walk of the
biggest) and far below what walking the whole value needs (a billion holes, a million
shared leaves: tens of seconds). An unbounded describer ends `timeout`; a bounded one `ok`
with the exact preview.
"""

from __future__ import annotations

import pytest

from sandbox import Limits, Sandbox

# generous: the bounded preview takes < 5 ms, the JSON walk < 500 ms; walking 1e9 holes or 1e6
# shared leaves takes > 5 s.
TIGHT = Limits(cpu_ms=2000, wall_ms=20000, mem_mb=256)


def run(code: str):
    with Sandbox(limits=TIGHT) as sb:
        out = sb.eval(code)
        assert out.status == "ok", out.error
        return out


def multiline(entries: list[str], open_: str = "[", close: str = "]") -> str:
    return open_ + "\n  " + ",\n  ".join(entries) + "\n" + close


def test_a_billion_holes_are_one_count() -> None:
    out = run("var a = []; a.length = 1e9; a")
    assert out.value["preview"] == "[ <1000000000 empty items> ]"
    assert out.value["json_omitted"] == "its JSON is longer than 1048576 characters"


def test_a_few_holes_read_as_node_prints_them() -> None:
    assert run("[1, , , 4]").value["preview"] == "[ 1, <2 empty items>, 4 ]"
    assert run("[1, , , 4]").value["json"] == [1, None, None, 4]
    assert run("[, 'a']").value["preview"] == "[ <1 empty item>, 'a' ]"


def test_values_far_apart_in_a_huge_array() -> None:
    out = run("var b = []; b[5e8] = 1; b.length = 1e9; b.x = 2; b")
    assert out.value["preview"] == "[ <500000000 empty items>, 1, <499999999 empty items>, x: 2 ]"


def test_many_values_far_apart_stop_at_the_item_cap() -> None:
    out = run("var c = []; for (let i = 0; i < 300; i++) c[i * 1e6] = i; c")
    entries: list[str] = []
    for i in range(50):
        entries += [str(i), "<999999 empty items>"]
    length = 299 * 10**6 + 1
    entries.append(f"... {length - 50 * 10**6} more items")
    assert out.value["preview"] == multiline(entries)


def test_shared_sub_objects_do_not_multiply_the_preview() -> None:
    # 300 properties built; a naive preview renders 100 * 100 * 100 leaves.
    out = run("{ const l = {}; for (let i = 0; i < 100; i++) l['k' + i] = i;"
              " const m = {}; for (let i = 0; i < 100; i++) m['k' + i] = l;"
              " const t = {}; for (let i = 0; i < 100; i++) t['k' + i] = m; t }")
    preview = out.value["preview"]
    assert preview.startswith("{\n  k0: {\n    k0: {\n      k0: 0,\n      k1: 1,")
    assert len(preview) == 4096 + 1 and preview.endswith("…")


def test_shared_objects_of_skipped_values_do_not_multiply_the_json_walk() -> None:
    # Functions produce no JSON text: only the count of values visited bounds the walk.
    out = run("{ const l = {}; for (let i = 0; i < 10000; i++) l['f' + i] = () => i;"
              " const t = []; for (let i = 0; i < 10000; i++) t.push(l); t }")
    assert out.value["json_omitted"] == "it has more than 262144 values"


def test_many_long_strings_cost_only_what_the_preview_keeps() -> None:
    out = run("{ const s = 'a\"\\''.repeat(3000); const a = []; for (let i = 0; i < 1000; i++) a.push([s, s, s]); a }")
    preview = out.value["preview"]
    assert preview.startswith("[\n  [\n    `a\"'a\"'")
    assert len(preview) == 4097


def test_huge_json_stops_at_the_limit() -> None:
    out = run("{ const s = 'x'.repeat(10000); const a = []; for (let i = 0; i < 10000; i++) a.push(s); a }")
    assert "json" not in out.value
    assert out.value["json_omitted"] == "its JSON is longer than 1048576 characters"


def test_a_huge_map_counts_what_it_does_not_show() -> None:
    out = run("{ const m = new Map(); for (let i = 0; i < 200000; i++) m.set(i, i); m }")
    entries = [f"{i} => {i}" for i in range(100)] + ["... 199900 more items"]
    assert out.value["preview"] == multiline(entries, "Map(200000) {", "}")


def test_a_huge_set_counts_what_it_does_not_show() -> None:
    out = run("{ const s = new Set(); for (let i = 0; i < 200000; i++) s.add(i); s }")
    entries = [str(i) for i in range(100)] + ["... 199900 more items"]
    assert out.value["preview"] == multiline(entries, "Set(200000) {", "}")


@pytest.mark.parametrize("code", [
    "console.log((() => { var a = []; a.length = 1e9; return a })()); 1",
    "{ const l = {}; for (let i = 0; i < 100; i++) l['k' + i] = 'v'.repeat(50);"
    " const m = {}; for (let i = 0; i < 100; i++) m['k' + i] = l; console.log([m, m, m, m]); 1 }",
])
def test_console_lines_are_bounded_too(code: str) -> None:
    with Sandbox(limits=TIGHT.replace(max_output_kb=4096)) as sb:
        out = sb.eval(code)
        assert out.status == "ok", out.error
        texts = [e.payload["text"] for e in out.events if e.type == "console"]
        assert texts[0] == "[ <1000000000 empty items> ]" or len(texts[0]) <= (1 << 20) + 1
