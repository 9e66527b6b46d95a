"""A PNG a person can read at a glance: one panel per scenario, a horizontal bar per engine or
variant (its median, the p10–p90 range as a whisker), on a log scale because the figures span
nanoseconds to seconds; each bar labelled with its median and its ratio to native QuickJS.
Workloads on every engine on the left, vm-system's layers on the right; the machine and the
versions in the title.

matplotlib is imported here only (the `bench` extra): nothing else needs it."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from benchmarks.harness import Figure, ScenarioResult
from benchmarks.report import cells, machine_line, versions_line
from benchmarks.timing import BenchReport

COLOURS = {
    "vm-system": "#1f5fa8",
    "vm-system, checkpoint after every eval": "#78a6dc",
    "native QuickJS": "#444444",
    "quickjs-rs": "#d9822b",
    "wasmjs": "#3c9d5d",
    "Node.js": "#8e5bb5",
    "python": "#aaaaaa",
}
BAR_HEIGHT_IN = 0.27
PANEL_EXTRA_IN = 0.9
LABEL_CHARS = 54


def _label(result: ScenarioResult, figure: Figure) -> str:
    # A workload's panel compares engines: the engine is the label. A layer's rows are variants.
    text = figure.engine if result.layer == "engine" else figure.label
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _panel(ax: Any, result: ScenarioResult) -> None:
    figures = result.figures
    ys = list(range(len(figures)))[::-1]
    timed = [f.stats.median for f in figures if f.stats]
    lo = min(timed, default=1e-6)
    hi = max([f.stats.p90 for f in figures if f.stats] or [1.0])
    for y, f in zip(ys, figures, strict=True):
        colour = COLOURS.get(f.engine, "#999999")
        text = cells(result, f)
        if f.stats is None:
            ax.text(lo, y, f"  {text.median}", va="center", fontsize=8,
                    color="#b00020" if f.status != "absent" else "#777777")
            continue
        s = f.stats
        ax.barh(y, s.median, color=colour, height=0.7,
                edgecolor="black" if f.baseline else colour, linewidth=1.2 if f.baseline else 0)
        ax.errorbar(s.median, y, xerr=[[s.median - s.p10], [s.p90 - s.median]],
                    fmt="none", ecolor="#222222", elinewidth=0.8, capsize=2)
        ratio = "" if text.ratio in ("-", "base") else f"  {text.ratio}"
        ax.text(s.p90 * 1.08, y, f"{text.median}{ratio}", va="center", fontsize=7.5)
    ax.set_yticks(ys)
    ax.set_yticklabels([_label(result, f) for f in figures], fontsize=8)
    ax.set_xscale("log")
    # Room on the right for the labels, a decade on the left for absent/failed rows.
    ax.set_xlim(10 ** math.floor(math.log10(lo) - 0.3), hi * 60)
    if result.throughput:
        axis = f"seconds per {result.unit} (labels: {result.unit}s per second)"
    else:
        axis = f"seconds per {result.unit}"
    ax.set_xlabel(axis + ", log scale", fontsize=7.5)
    ax.set_title("\n".join(textwrap.wrap(f"{result.scenario}: {result.description}", 70)),
                 fontsize=9, loc="left")
    ax.grid(axis="x", which="major", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(axis="x", labelsize=7)


def plot(report: BenchReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    columns = [[r for r in report.results if r.layer == "engine" and r.figures],
               [r for r in report.results if r.layer != "engine" and r.figures]]
    columns = [c for c in columns if c]
    if not columns:
        raise ValueError("nothing to plot: no scenario has figures")
    heights = [sum(len(r.figures) * BAR_HEIGHT_IN + PANEL_EXTRA_IN for r in c) for c in columns]
    # Constrained layout makes room for the labels, however long they are.
    fig = plt.figure(figsize=(8.5 * len(columns), max(heights) + 1.0), layout="constrained")
    subfigures = fig.subfigures(1, len(columns), squeeze=False)[0]
    for subfigure, results in zip(subfigures, columns, strict=True):
        axes = subfigure.subplots(len(results), 1, squeeze=False,
                                  height_ratios=[len(r.figures) + 1.6 for r in results])[:, 0]
        for ax, result in zip(axes, results, strict=True):
            _panel(ax, result)
    fig.suptitle(f"vm-system bench ({report.mode}, {report.started_at}): median per unit, "
                 "whiskers p10–p90, log scale; ratios to native QuickJS (black-edged bar)\n"
                 f"{machine_line(report)}\n"
                 + "\n".join(textwrap.wrap(versions_line(report), 95 * len(columns))),
                 fontsize=9, x=0.01,
                 ha="left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
