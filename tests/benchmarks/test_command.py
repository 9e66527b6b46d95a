"""`vm-system bench` end to end, in this process: the table, the JSON and a PNG from a quick run
of one scenario; listing; usage errors.

No timing assertions: how fast anything runs is the benchmark's output, never a test verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import structlog

from supervisor.adapters.cli.common import UsageError
from supervisor.adapters.cli.main import build_parser, main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """`main()` points structlog at this test's captured stderr: undo it afterwards, or a later
    test's first log line would go to a closed file."""
    config = structlog.get_config()
    yield
    structlog.configure(**config)


def bench(argv: Sequence[str]) -> int:
    """`vm-system bench ARGV` through the real parser and hook, leaving logging as it is (so
    that no logger is cached with this test's captured streams)."""
    args = build_parser().parse_args(["bench", *argv])
    return int(args.handler(args))


def test_a_quick_run_prints_the_table_and_writes_json_and_a_png(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    code = bench(["--quick", "--scenario", "eval-fib-25", "--json", str(out_json),
                  "--plot", str(out_png), "--dir", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    for text in ("SCENARIO", "ENGINE", "MEDIAN", "P10–P90", "× NATIVE", "eval-fib-25",
                 "native QuickJS", "base", "machine:", "cores", "versions:", "wasmtime"):
        assert text in printed, text
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert data["mode"] == "quick" and [r["scenario"] for r in data["results"]] == ["eval-fib-25"]
    assert data["machine"]["cpu_model"] and data["versions"]["python"]
    (result,) = data["results"]
    assert result["status"] == "ok" and len(result["figures"]) == 5
    png = out_png.read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    from PIL import Image

    with Image.open(out_png) as image:  # a real, decodable picture of a sensible size
        image.load()
        assert image.width >= 600 and image.height >= 300


def test_markdown_and_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert bench(["--list"]) == 0
    listed = capsys.readouterr().out
    for name in ("eval-trivial", "sandbox-spawn", "pipeline-threads", "http-repl", "process-run",
                 "store"):
        assert name in listed
    assert bench(["--quick", "--markdown", "--no-progress", "--scenario", "eval-library-70k",
                  "--dir", str(tmp_path)]) == 0
    markdown = capsys.readouterr().out
    assert "| SCENARIO" in markdown and "| eval-library-70k" in markdown


def test_an_unknown_scenario_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match="unknown scenario no-such-thing"):
        bench(["--scenario", "no-such-thing"])
    assert main(["bench", "--scenario", "no-such-thing"]) == 2  # nothing runs, nothing logs
    assert "unknown scenario no-such-thing" in capsys.readouterr().err
