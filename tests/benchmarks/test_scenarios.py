"""Every scenario of `vm-system bench`, as registered, in quick mode with one sample per row (the
harness is under test, not the speed): its figures have the expected fields, every engine that
is installed answered right and was timed, every engine that is not is reported absent with a
reason, and ratios are taken against native QuickJS.

No timing assertions: how fast anything runs is the benchmark's output, never a test verdict.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from benchmarks.engines import NATIVE, all_engines
from benchmarks.harness import run_scenario
from benchmarks.scenarios import MODULES
from benchmarks.workloads import Workload

FIGURE_FIELDS = {"engine", "label", "status", "version", "note", "error", "baseline", "ratio", "n",
                 "median_s", "p10_s", "p90_s", "mean_s", "min_s", "max_s"}
RESULT_FIELDS = {"scenario", "layer", "description", "unit", "status", "error", "runs", "warmup",
                 "throughput", "figures", "details", "notes"}


def present_for(workload: object) -> dict[str, bool]:
    """Which engines run the scenario's workload: installed, and (for a workload that needs
    host functions, promises or timers) having them; any engine, for a layer's scenario."""
    return {e.name: (e.runs(workload) if isinstance(workload, Workload)
                     else e.availability()).present for e in all_engines()}


# These fetch from the real npm registry in their setup (lodash; the TypeScript transpiler).
NEEDS_REGISTRY = frozenset({"pipeline_spawn_lodash", "pipeline_typescript"})


@pytest.mark.parametrize("module", [pytest.param(m, marks=pytest.mark.registry) if m in NEEDS_REGISTRY
                                    else m for m in MODULES])
def test_the_scenario_runs_quick_and_reports_every_field(module: str, tmp_path: Path) -> None:
    imported = importlib.import_module(f"benchmarks.scenarios.{module}")
    scenario = imported.scenario()
    present = present_for(getattr(imported, "WORKLOAD", None))
    result = run_scenario(scenario, quick=True, directory=tmp_path, max_runs=1)
    assert result.status == "ok", result.error
    data = json.loads(json.dumps(result.to_dict()))  # JSON-serialisable as a whole
    assert data.keys() >= RESULT_FIELDS and data["scenario"] == scenario.name
    assert data["figures"], "a scenario without rows"
    for figure in data["figures"]:
        assert figure.keys() >= FIGURE_FIELDS
        engine_present = present.get(figure["engine"], True)  # rows of the layers: vm-system
        if figure["status"] == "absent":
            assert not engine_present and figure["note"], figure
            assert figure["median_s"] is None and figure["n"] == 0
            continue
        assert engine_present and figure["status"] == "ok", figure
        assert figure["n"] == 1 and 0 < figure["p10_s"] <= figure["median_s"] <= figure["p90_s"]
        if scenario.throughput:
            assert figure["per_second_median"] == pytest.approx(1 / figure["median_s"])
    baselines = [f for f in data["figures"] if f["baseline"]]
    assert len(baselines) <= 1
    if baselines and baselines[0]["status"] == "ok":
        assert baselines[0]["engine"] == NATIVE and baselines[0]["ratio"] == 1.0
        for figure in data["figures"]:
            if figure["status"] == "ok":
                assert figure["ratio"] == pytest.approx(
                    figure["median_s"] / baselines[0]["median_s"])
    if scenario.layer == "engine":  # every engine has its row, present or not
        assert [f["engine"] for f in data["figures"]][-4:] == \
            ["native QuickJS", "quickjs-rs", "wasmjs", "Node.js"]
