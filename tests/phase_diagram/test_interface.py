"""One interface for data and results on the phase-diagram commands, run in-process: data
names, the converge verdict, locate's horizons, tables and CSV, cost announcements and flag
renames."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import phase_diagram
from phase_diagram.cli.main import main
from phase_diagram.convergence import scaling_study, study_verdict, verdict_lines
from phase_diagram.finder.decision import decide_asymptotic
from phase_diagram.finder.locate import horizon_report, locate, locate_horizons

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "examples" / "phase_scan_small.toml"


def test_converge_says_its_data_and_states_the_scans_verdict(tmp_path, capsys):
    out = tmp_path / "c.png"
    assert main(["converge", "--master-lr", "0.5*n**-0.5", "--keep-prob", "0.7*n**-0.5",
                 "--widths", "16,32,64", "--repeats", "2", "--horizon", "0.3", "--n-times", "2",
                 "--data", "toy", "-o", str(out), "--data-out", str(tmp_path / "c.npz"),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "data toy, widths 16, 32, 64, 2 repeats, seed 0, horizon T = 0.3" in text
    assert "verdict (predictor, the scans' rule):" in text
    assert "verdict (w2, the scans' rule):" in text
    study = phase_diagram.load(tmp_path / "c.npz")[0]
    # the verdict is decide_asymptotic on the sup over t > 0 of each cell, as in the scans
    expected = decide_asymptotic(study.widths, {
        "jump-poisson": study.distances["jump-poisson"]["predictor"][:, :, 1:].max(axis=2).T})
    assert study_verdict(study).phase == expected.phase
    assert f"verdict (predictor, the scans' rule): {expected.phase}" in text


def test_verdict_lines_say_which_metric_to_trust_when_they_disagree():
    study, _ = scaling_study("0.5*n**-0.5", "0.7*n**-0.5", [16, 32], repeats=2, horizon=0.2,
                             n_times=2, progress=False)
    falling = np.array([[[0.0, 1.0], [0.0, 0.5]], [[0.0, 1.1], [0.0, 0.52]]])
    flat = np.ones_like(falling)
    study.distances["jump-poisson"] = dict(predictor=falling, w2=flat)
    lines = verdict_lines(study)
    assert "trust predictor's verdict" in lines[-1] and "k^(-1/p)" in lines[-1]


def test_locate_states_its_horizon_data_and_how_the_answer_moves(tmp_path, capsys):
    located = locate_horizons(32, 0.2, 0.5, steps=[2, 6], repeats=2, seed=0, workers=1,
                              progress=False)
    assert [r.steps for r in located] == [2, 6]
    assert "holds for the horizon T = 0.4 (2 steps)" in located[0].summary()
    assert "data toy; seed 0" in located[0].summary()
    report = "\n".join(horizon_report(located))
    assert "how the answer moves with the horizon" in report
    assert ("at every horizon asked" in report) != ("depends on the horizon" in report)
    frame = located[0].to_frame()
    assert len(frame) == len(located[0].distances) * 2
    assert frame.nearest.sum() == 2 and set(frame.data) == {"toy"}
    assert "LocateResult(" in repr(located[0]) and len(repr(located[0])) < 1500
    csv = tmp_path / "locate.csv"
    assert main(["locate", "--width", "32", "--master-lr", "0.2", "--keep-prob", "0.5",
                 "--steps", "2,6", "--repeats", "2", "--workers", "1", "--no-progress",
                 "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "how the answer moves with the horizon" in out
    table = pd.read_csv(csv)
    assert sorted(set(table.steps)) == [2, 6] and len(table) == 2 * len(frame)


def test_locate_announces_a_long_run_before_it_starts(monkeypatch, capsys):
    import phase_diagram.finder.locate as locate_module

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before the first cell")
    monkeypatch.setattr(locate_module, "_measure", stop)
    # the run: locate --steps 100 at n = 2000 (3 repeats on one core)
    with pytest.raises(RuntimeError, match="stopped"):
        locate(2000, 0.1, 0.5, steps=100, workers=1, progress=False)
    err = capsys.readouterr().err
    assert re.search(r"locate at width 2000 over T = 10 \(100 steps\), 3 repeats: estimated "
                     r"[0-9.]+ (s|min)", err)
    with pytest.raises(RuntimeError, match="stopped"):
        locate(64, 0.1, 0.5, steps=2, workers=1, progress=False)
    assert capsys.readouterr().err == ""


def test_scan_prints_its_decisions_and_writes_them_as_csv(tmp_path, capsys):
    csv = tmp_path / "decisions.csv"
    assert main(["scan", str(SMALL), "--out-dir", str(tmp_path / "scan"), "--workers", "1",
                 "--no-progress", "--allow-import", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "scan: data set by the cell function" in out
    assert "decided " in out and "theory=" in out
    table = pd.read_csv(csv)
    assert list(table.scaling) == ["WGF", "critical", "penalized WGF"]
    assert set(table.columns) >= {"theory", "detected", "agrees", "reason", "width"}


def test_renamed_scan_and_plot_flags_warn(tmp_path, capsys):
    assert main(["scan", str(SMALL), "--out", str(tmp_path / "s"), "--workers", "1",
                 "--quiet", "--allow-import"]) == 0
    err = capsys.readouterr().err
    assert "warning: --out is now --out-dir" in err and "warning: --quiet is now --no-progress" \
        in err
    assert main(["plot", str(tmp_path / "s"), "--output", str(tmp_path / "p.png")]) == 0
    assert "warning: --output is now --out" in capsys.readouterr().err
    assert (tmp_path / "p.png").exists()
    assert main(["map", "--replot", "--out", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "warning: --out DIR is now --out-dir DIR" in err and "no phase map" in err


def test_map_announces_a_long_run_before_it_starts(monkeypatch, capsys, tmp_path):
    """run_map prints the plug-in cost model's total over its pending cells before the first
    cell when it exceeds ANNOUNCE_SECONDS, nothing below it."""
    import phase_diagram.finder.phase_map as phase_map
    from meanfield_dropout.runtime import cells as cell_store, memory
    from phase_diagram.finder.phase_map import MapConfig, build_map_cells, run_map

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before the first cell")
    monkeypatch.setattr(cell_store, "run_unordered", stop)
    config = MapConfig(grid=2, widths=(16, 32), repeats=2, horizon=1.0, budget=1.0)
    cells, _ = build_map_cells(config)
    shape = config.dataset()[0].shape
    estimate = sum(phase_map._cell_seconds(c, config, shape) for c in cells)
    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", estimate / 2)
    with pytest.raises(RuntimeError, match="stopped"):
        run_map(config, tmp_path / "map", workers=1, progress=False)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"the map of {len(cells)} cells: estimated ")
    monkeypatch.setattr(memory, "ANNOUNCE_SECONDS", estimate * 2)
    with pytest.raises(RuntimeError, match="stopped"):
        run_map(config, tmp_path / "map", workers=1, progress=False)
    assert capsys.readouterr().err == ""
