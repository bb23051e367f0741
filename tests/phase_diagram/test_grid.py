"""The grid decision run (phase_diagram.scan.grid): points and their theory, the step budget,
the cost model, resumable cells identical for any worker count, the CLI and the figure, and
(slow) the quick mode deciding a point deep in each region right."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout import cost_model
from phase_diagram.cli.main import main
from phase_diagram.finder.phase_map import map_points
from phase_diagram.scan.cells import build_cells
from phase_diagram.scan.grid import (BEYOND_BUDGET, QUICK, GridConfig, decide_grid,
                                     estimate_grid_cost, grid_cost, grid_points, scan_config)
from phase_diagram.scan.runner import _arguments
from phase_diagram.theory.phases import classify

ROOT = Path(__file__).resolve().parents[2]
#: Two cheap points (a WGF point and the critical point) at widths 16 and 32.
TINY = GridConfig(grid=4, widths=(16, 32), max_width=32, repeats=2,
                  only=("grid(2,2,0)", "critical point"))


def _cells(out_dir):
    """{cell key: distances} of every finished cell of a grid run."""
    return {p.stem: json.loads(p.read_text())["distances"]
            for p in sorted((Path(out_dir) / "scan" / "cells").glob("*.json"))}


def test_points_are_the_maps_with_their_theory_phase():
    points = grid_points(4)
    assert [p.point for p in points] == map_points(4)
    for p in points:
        assert p.theory == classify(p.point.scaling()).phase
        limit = classify(p.spec.scaling()).simplex_limit
        np.testing.assert_allclose(limit, [float(u) for u in p.point.u], atol=1e-9)
    phases = {p.point.label: p.theory for p in points}
    assert phases["critical point"] == "critical"
    assert phases["grid(4,0,0)"] == "jump-bernoulli"        # the vertex, τ = q = 1/2


def test_step_budget_sets_points_apart():
    config = dataclasses.replace(QUICK, max_steps=1000)
    cost = estimate_grid_cost(config)
    points = {p.point.label: p for p in grid_points(config.grid)}
    summary_beyond = [label for label, p in points.items()
                      if any(p.steps(config, w) > 1000 for w in config.widths)]
    assert cost["beyond"] == len(summary_beyond) > 0
    assert cost["points"] + cost["beyond"] == len(points)
    # a point's steps: T/τ_n rounded, τ_n = n^(-b_τ)/2
    p = points["critical point"]
    assert p.steps(config, 64) == round(config.horizon / (0.5 / 64))


def test_cost_model_is_the_sum_of_its_cells():
    config = dataclasses.replace(TINY, max_width=64, clock_coupling=False)
    cost = estimate_grid_cost(config)
    run = [p for p in grid_points(config.grid) if p.point.label in config.only]
    cells = build_cells(scan_config(config, run))
    # each cell priced once by the grid cells' own cost estimator (measure_distances' model)
    first = sum(grid_cost(*args, **kwargs)[1] for args, kwargs in map(_arguments, cells))
    assert cost["first_stage"] == pytest.approx(first, rel=1e-12)
    assert set(cost["stages"]) == {32, 64}
    assert cost["stages"][64] > cost["stages"][32] / 2 > 0
    # TINY starts at the smallest width 16: no smaller widths; the bound runs every point at
    # every width with max_repeats (12) instead of the first stage's 2 repeats
    assert cost["smaller"] == 0
    assert cost["upper_bound"] == pytest.approx(sum(cost["stages"].values()) * 12 / 2)
    lower = estimate_grid_cost(dataclasses.replace(config, widths=(32, 64), min_width=16))
    at_16 = sum(grid_cost(*args, **kwargs)[1] for args, kwargs in map(_arguments, cells)
                if args[0] == 16)
    assert lower["smaller"] == pytest.approx(at_16, rel=1e-12)
    # a coupled clock adds one keep draw per particle and step, for each jump-poisson or
    # critical limit (the theory's or a competitor with nominal constants)
    coupled = estimate_grid_cost(dataclasses.replace(config, clock_coupling=True))
    draws = sum(len({"jump-poisson", "critical"} & set(c.limits)) * c.width
                * round(config.horizon / c.master_lr) for c in cells)
    assert coupled["first_stage"] - cost["first_stage"] == pytest.approx(
        draws * cost_model.UNIFORM)


def test_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match="only"):
        GridConfig(grid=4, only=("nowhere",))
    with pytest.raises(ValueError, match="widths"):
        GridConfig(widths=(256,))
    with pytest.raises(ValueError, match="max_width"):
        GridConfig(widths=(256, 512), max_width=300)


def test_cli_estimate_and_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["grid", "--quick", "--estimate"]) == 0
    out = capsys.readouterr().out
    assert "cost model (CPU time): first stage" in out and "points within the budget" in out
    assert main(["grid", "--quick", "--grid", "5"]) == 2
    err = capsys.readouterr().err
    assert "--quick" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["grid", "--quick", "--estimate", "--flat-slope", "-0.1"]) == 2
    err = capsys.readouterr().err
    assert "--flat-slope must be a number in [0, 10]" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_directory_of_another_grid_is_refused_before_any_cell_runs(tmp_path):
    (tmp_path / "grid.json").write_text(json.dumps(dataclasses.asdict(TINY)))
    with pytest.raises(ValueError, match=r"holds a grid decision of another configuration "
                                         r"\(see its grid.json\); give another directory"):
        decide_grid(dataclasses.replace(TINY, repeats=3), tmp_path, workers=1, progress=False)
    assert not (tmp_path / "scan").exists()


_KILLABLE = """
import sys
from phase_diagram.scan.grid import GridConfig, decide_grid
if __name__ == "__main__":
    config = GridConfig(grid=4, widths=(16, 32), max_width=32, repeats=2,
                        only=("grid(2,2,0)", "critical point"))
    decide_grid(config, sys.argv[1], workers=int(sys.argv[2]), progress=False)
"""


@pytest.mark.slow
def test_grid_resumes_after_kill_with_identical_numbers_for_any_worker_count(tmp_path):
    reference = tmp_path / "reference"
    summary = decide_grid(TINY, reference, workers=1, progress=False)
    # 8 cells in the first stage, and more repeats where only the intervals blocked
    total = sum(2 * r.repeats for r in summary.results)
    assert len(_cells(reference)) == total > 8
    script = tmp_path / "run.py"
    script.write_text(_KILLABLE)
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script), str(out), "2"], env=env, cwd=ROOT,
                            start_new_session=True)
    deadline = time.time() + 300
    while len(list((out / "scan" / "cells").glob("*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _cells(out)
    assert 2 <= len(before) < total
    resumed = decide_grid(TINY, out, workers=2, progress=False)
    after = _cells(out)
    assert {k: after[k] for k in before} == before        # finished cells kept as they were
    assert after == _cells(reference)                      # 1 or 2 workers: same numbers
    assert [(r.status, r.phase) for r in resumed.results] == \
        [(r.status, r.phase) for r in summary.results]
    # every record holds its CPU seconds, and the summary adds them up beside the cost model's
    # prediction of the same cells (the model's accuracy is a benchmark's: bench_cell_costs.py)
    records = [json.loads(p.read_text()) for p in (reference / "scan" / "cells").glob("*.json")]
    assert all(r["cpu"] >= 0 for r in records)
    assert all(r["dropout_motion"] > 0 for r in records)    # dropout moved at these points
    assert summary.measured_seconds == pytest.approx(sum(r["cpu"] for r in records))
    assert summary.measured_seconds == pytest.approx(sum(r.seconds for r in summary.results))
    # a cell's predicted cost does not depend on its repeat index
    per_repeat = {r.point.point.label: estimate_grid_cost(dataclasses.replace(
        TINY, only=(r.point.point.label,)))["first_stage"] / TINY.repeats
        for r in summary.results}
    assert summary.predicted_seconds == pytest.approx(
        sum(per_repeat[r.point.point.label] * r.repeats for r in summary.results))


#: A point deep in each region the quick mode reaches, with its theory phase.
DEEP = {"grid(3,1,0)": "wgf", "grid(2,2,0)": "wgf", "jump-poisson line b=1/4": "jump-poisson",
        "critical point": "critical", "grid(1,1,2)": "degenerate",
        "grid(1,0,3)": "degenerate"}   # frozen: n q_n T/τ_n → 0


@pytest.mark.slow
def test_quick_mode_decides_deep_points_right(tmp_path):
    config = dataclasses.replace(QUICK, only=tuple(DEEP))
    summary = decide_grid(config, tmp_path, workers=2, progress=False)
    got = {r.point.point.label: (r.status, r.phase) for r in summary.results}
    assert got == {label: ("decided", phase) for label, phase in DEEP.items()}
    assert summary.wrong == 0


def test_figure_draws_every_status(tmp_path):
    """The figure of a summary with decided, undetermined and beyond-budget points."""
    from phase_diagram.plots import grid_decision_figure
    from phase_diagram.scan.grid import GridSummary, PointResult
    from phase_diagram.scan.summary import Decision
    from phase_diagram.finder.decision import CandidateFit

    points = {p.point.label: p for p in grid_points(4)}
    fit = CandidateFit(False, -0.5, -0.7, -0.3, 1.0, 1.0, 1.0)
    decision = Decision("jump-poisson", "clearly falling", 256, {}, {"jump-poisson": fit})
    results = [PointResult(points["jump-poisson line b=1/4"], "decided", "jump-poisson", 256,
                           "", decision, 1.0),
               PointResult(points["grid(2,1,1)"], "undetermined", None, 512, "why",
                           dataclasses.replace(decision, phase="undetermined"), 1.0),
               PointResult(points["grid(1,3,0)"], BEYOND_BUDGET, None, None, "steps", None,
                           0.0)]
    summary = GridSummary(QUICK, results, {128: 0.0, 256: 0.5, 512: 0.5}, 0, 1.0, 2.0, 0)
    fig = grid_decision_figure(summary)
    assert len(fig.axes) == 3
    fig.savefig(tmp_path / "grid.png")
    # the not-falling option is named in the report and the figure's title
    assert "not falling" not in summary.lines()[-1]
    summary = dataclasses.replace(summary, flat_slope=0.15)
    note = "degenerate also when every limit is clearly not falling (slope interval above -0.15)"
    assert summary.lines()[-1].endswith("; " + note)
    assert note in grid_decision_figure(summary).axes[0].get_title()


def test_limit_gaps_compare_the_theory_limit_with_each_competitor():
    from phase_diagram.scan.grid import limit_gaps
    points = {p.point.label: p for p in grid_points(4)}
    gaps = limit_gaps(QUICK, points["critical point"], particles=200, seed=1)
    assert gaps.pop("theory") == "critical"
    assert set(gaps) == {"wgf", "penalized-wgf", "jump-poisson"}
    assert all(g > 0 for g in gaps.values())
    # a degenerate point has no limit of its own: gaps are measured from the flow
    degenerate = limit_gaps(QUICK, points["grid(1,1,2)"], particles=200, seed=1)
    assert degenerate.pop("theory") is None and "wgf" not in degenerate
