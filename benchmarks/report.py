"""A finished run as people read it: the header naming the machine and the versions, the
table (scenario × engine: median, p10–p90, ratio to native QuickJS), the notes under it; and
as machines read it (JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import Figure, ScenarioResult
from benchmarks.timing import BenchReport, format_seconds, render_table

COLUMNS = ("SCENARIO", "ENGINE", "MEASURED", "N", "MEDIAN", "P10–P90", "× NATIVE")


def machine_line(report: BenchReport) -> str:
    m = report.machine
    load = m.get("load_average")
    return (f"machine: {m['cpu_model']}, {m['cores']} cores ({m['usable_cores']} usable), "
            f"{m['platform']}, load average at start "
            + (" ".join(f"{x:.2f}" for x in load) if load else "unknown"))


def versions_line(report: BenchReport) -> str:
    shown = [f"{k} {v}" for k, v in report.versions.items() if v]
    return "versions: " + ", ".join(shown)


def header_lines(report: BenchReport) -> list[str]:
    code = report.code
    identity = code.get("git_commit", "no git") + (
        " (sources modified)" if code.get("sources_modified") else "")
    return [f"vm-system bench, {report.mode} mode, {report.started_at}, {report.duration_s:.1f} s",
            machine_line(report), versions_line(report),
            f"code: {identity}, sources sha256 {code.get('sources_sha256')}"]


def rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s"


@dataclass(frozen=True)
class Cells:
    median: str
    spread: str
    ratio: str


def cells(result: ScenarioResult, figure: Figure) -> Cells:
    s = figure.stats
    if s is None:
        text = "absent" if figure.status == "absent" else f"FAILED ({figure.status})"
        return Cells(text, "-", "-")
    ratio = "base" if figure.baseline else (f"{figure.ratio:.3g}×" if figure.ratio else "-")
    if result.throughput:
        return Cells(rate(1 / s.median), f"{rate(1 / s.p90)}–{rate(1 / s.p10)}", ratio)
    return Cells(f"{format_seconds(s.median)}/{result.unit}",
                 f"{format_seconds(s.p10)}–{format_seconds(s.p90)}", ratio)


def _measured(figure: Figure) -> str:
    # Rows already say which engine: the label without its "engine: " prefix.
    prefix = f"{figure.engine}: "
    return figure.label[len(prefix):] if figure.label.startswith(prefix) else figure.label


def table_rows(report: BenchReport) -> Iterator[list[str]]:
    for result in report.results:
        if not result.figures:
            yield [result.scenario, "-", f"FAILED ({result.status})", "0", "-", "-", "-"]
            continue
        for index, figure in enumerate(result.figures):
            c = cells(result, figure)
            n = str(figure.stats.n) if figure.stats else "0"
            yield [result.scenario if index == 0 else "", figure.engine, _measured(figure), n,
                   c.median, c.spread, c.ratio]


def note_lines(report: BenchReport) -> list[str]:
    lines: list[str] = []
    for result in report.results:
        if result.error:
            lines.append(f"{result.scenario}: {result.status}: {result.error}")
        lines.extend(result.notes)
    # By engine and reason: an installed engine is absent only from the workloads it cannot
    # run, for a reason of each.
    absent: dict[tuple[str, str | None], list[str]] = {}
    for result in report.results:
        for f in result.figures:
            if f.status == "absent":
                absent.setdefault((f.engine, f.note), []).append(result.scenario)
    installed = {name for name, found in report.extra.get("engines", {}).items()
                 if found.get("present")}
    for (engine, note), scenarios in absent.items():
        where = f" ({', '.join(scenarios)})" if engine in installed else ""
        lines.append(f"{engine}: absent{where}: {note}")
    engines = report.extra.get("engines", {})
    for engine, found in engines.items():
        if found.get("present") and found.get("note"):
            lines.append(f"{engine}: {found['note']}")
    # A row timed with a note of its own: what it runs instead of the workload, and why.
    for result in report.results:
        for f in result.figures:
            if f.status != "absent" and f.note and \
                    f.note != engines.get(f.engine, {}).get("note"):
                lines.append(f"{result.scenario}: {f.engine}: {f.note}")
    return lines


def markdown(report: BenchReport) -> str:
    """The whole report as Markdown (for docs/performance.md)."""
    rows = [[cell.replace("|", "\\|") for cell in row] for row in table_rows(report)]
    parts = [*(f"{line}  " for line in header_lines(report)), "",
             render_table(list(COLUMNS), rows)]
    notes = note_lines(report)
    if notes:
        parts += ["", *(f"* {n}" for n in notes)]
    return "\n".join(parts)


def write_json(report: BenchReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")

