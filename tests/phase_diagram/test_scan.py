"""Empirical scans: hashing, seeding, atomic resumable cells, pool vs Dask, phase decision."""
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest

from phase_diagram.scan import (build_cells, config_from_dict, decide_phase, load_config,
                                run_scan, summarize)

POWER_CELL = "tests.phase_diagram.cells:power_cell"

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "examples" / "phase_scan_small.toml"


def _distances(out_dir):
    """{cell key: distances} of every finished cell."""
    return {p.stem: json.loads(p.read_text())["distances"]
            for p in sorted((Path(out_dir) / "cells").glob("*.json"))}


def _counts(marker_dir):
    return {p.stem: len(p.read_text().splitlines()) for p in Path(marker_dir).glob("*.count")}


@pytest.fixture
def small_config():
    return load_config(SMALL, allow_import=True)


@pytest.fixture
def markers(tmp_path, monkeypatch):
    path = tmp_path / "markers"
    path.mkdir()
    monkeypatch.setenv("PHASE_TEST_MARKERS", str(path))
    return path


def test_cells_keys_and_seeds_depend_on_identity_not_order(small_config):
    cells = build_cells(small_config)
    assert len(cells) == 3 * 2 * 2
    assert len({c.key for c in cells}) == len(cells)
    assert len({c.seed for c in cells}) == len(cells)
    reordered = config_from_dict(dict(
        seed=7, widths=[64, 16], repeats=2, cell_function=POWER_CELL,
        scaling=[dict(name=s.name, tau=s.tau, keep=s.keep) for s in small_config.scalings[::-1]]),
        allow_import=True)
    assert {(c.key, c.seed) for c in build_cells(reordered)} == {(c.key, c.seed) for c in cells}
    other_root = config_from_dict(dict(
        seed=8, widths=[16, 64], repeats=2, cell_function=POWER_CELL,
        scaling=[dict(name=s.name, tau=s.tau, keep=s.keep) for s in small_config.scalings]),
        allow_import=True)
    assert not {c.seed for c in build_cells(other_root)} & {c.seed for c in cells}


def test_candidate_limits_follow_the_constants(small_config):
    limits = {c.scaling.name: c.limits for c in build_cells(small_config)}
    assert list(limits["WGF"]) == ["wgf"]
    assert limits["critical"] == {
        "wgf": dict(alpha=0.0, beta=0.0, tau=0.0),
        "penalized-wgf": dict(alpha=0.0, beta=2.0, tau=0.0),
        "jump-poisson": dict(alpha=1.0, beta=0.0, tau=0.0),
        "critical": dict(alpha=1.0, beta=2.0, tau=0.0)}
    assert list(limits["penalized WGF"]) == ["wgf", "penalized-wgf"]


def test_nominal_constants_add_wrong_limits():
    config = config_from_dict(dict(
        widths=[16, 64], nominal=dict(alpha=2.0, beta=3.0),
        scaling=[dict(tau="0.5*n**-0.5", keep="0.7"), dict(tau="0.5", keep="1/log(n)"),
                 dict(tau="n**-1.5", keep="1/n")]))
    cells = build_cells(config)
    wgf, degenerate, penalized = cells[0].limits, cells[6].limits, cells[-1].limits
    assert wgf == {"wgf": dict(alpha=0.0, beta=0.0, tau=0.0),
                   "penalized-wgf": dict(alpha=0.0, beta=3.0, tau=0.0),
                   "jump-poisson": dict(alpha=2.0, beta=0.0, tau=0.0),
                   "critical": dict(alpha=2.0, beta=3.0, tau=0.0)}
    # alpha = inf for the degenerate scaling: the nominal alpha = 2 >= tau = 0.5 is used
    assert degenerate["jump-bernoulli"] == dict(alpha=2.0, beta=0.0, tau=0.5)
    # a wrong limit keeps the scaling's own finite constants (beta = 1, not the nominal 3)
    assert penalized["critical"] == dict(alpha=2.0, beta=1.0, tau=0.0)
    with pytest.raises(ValueError, match="unknown key"):
        config_from_dict(dict(widths=[16, 64], nominal=dict(gamma=1.0),
                              scaling=[dict(tau="1/n", keep="1/n")]))


def test_scan_kill_and_resume_computes_each_cell_once(small_config, markers, tmp_path,
                                                      monkeypatch):
    out = tmp_path / "scan"
    monkeypatch.setenv("PHASE_TEST_KILL_AT", "5")
    with pytest.raises(BrokenProcessPool):
        run_scan(small_config, out, workers=1, progress=False, allow_import=True)
    assert len(_distances(out)) == 5            # the five cells before the kill are saved
    assert not list((out / "cells").glob(".*.tmp"))
    counts = run_scan(small_config, out, workers=2, progress=False, allow_import=True)
    assert counts == dict(total=12, skipped=5, computed=7, by_other=0, invalid=0)
    seeds = {c.seed for c in build_cells(small_config)}
    assert _counts(markers) == {str(s): 1 for s in seeds}
    # a third run has nothing left to do
    assert run_scan(small_config, out, workers=2, progress=False, allow_import=True)["computed"] == 0
    assert _counts(markers) == {str(s): 1 for s in seeds}
    # identical to an uninterrupted scan
    monkeypatch.delenv("PHASE_TEST_KILL_AT")
    reference = tmp_path / "reference"
    run_scan(small_config, reference, workers=1, progress=False, allow_import=True)
    assert _distances(reference) == _distances(out)


def test_cli_scan_killed_by_signal_resumes_without_recomputing(tmp_path):
    out, marks = tmp_path / "scan", tmp_path / "markers"
    marks.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT),
               PHASE_TEST_MARKERS=str(marks), PHASE_TEST_SLEEP="0.3")
    cmd = [sys.executable, "-m", "phase_diagram", "scan", str(SMALL), "--out-dir", str(out),
           "--workers", "2", "--no-progress", "--allow-import"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while len(list((out / "cells").glob("*.json"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = set(_distances(out))
    assert 3 <= len(done_before) < 12
    env.pop("PHASE_TEST_SLEEP")
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{len(done_before)} already done" in result.stdout
    cells = build_cells(load_config(SMALL, allow_import=True))
    assert set(_distances(out)) == {c.key for c in cells}
    counts = _counts(marks)
    for cell in cells:
        if cell.key in done_before:
            assert counts[str(cell.seed)] == 1      # finished cells are never recomputed
    reference = tmp_path / "reference"
    env["PHASE_TEST_MARKERS"] = str(tmp_path)
    subprocess.run([*cmd[:5], "--out-dir", str(reference), "--workers", "1", "--no-progress",
                    "--allow-import"],
                   env=env, cwd=ROOT,
                   check=True, capture_output=True, timeout=120)
    assert _distances(reference) == _distances(out)


def test_pool_and_dask_local_cluster_give_identical_numbers(small_config, tmp_path):
    pytest.importorskip("dask.distributed")
    run_scan(small_config, tmp_path / "pool", workers=2, progress=False, allow_import=True)
    run_scan(small_config, tmp_path / "dask", workers=2, dask="local", progress=False, allow_import=True)
    pool, dask = _distances(tmp_path / "pool"), _distances(tmp_path / "dask")
    assert len(pool) == 12 and pool == dask


def test_dask_scheduler_address_runs_and_resumes(small_config, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    run_scan(small_config, tmp_path / "pool", workers=1, progress=False, allow_import=True)
    # half of the cells come from an earlier run: the Dask run only computes the rest
    out = tmp_path / "dask"
    (out / "cells").mkdir(parents=True)
    for path in sorted((tmp_path / "pool" / "cells").glob("*.json"))[:6]:
        (out / "cells" / path.name).write_text(path.read_text())
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        counts = run_scan(small_config, out, dask=cluster.scheduler_address, progress=False, allow_import=True)
    assert counts == dict(total=12, skipped=6, computed=6, by_other=0, invalid=0)
    assert _distances(out) == _distances(tmp_path / "pool")


def test_missing_dask_gives_install_hint(small_config, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)     # import fails
    with pytest.raises(RuntimeError, match=r"pip install -e \.\[distributed\]"):
        run_scan(small_config, tmp_path, dask="local", progress=False, allow_import=True)


def test_unreachable_dask_scheduler_is_a_clear_error(small_config, tmp_path, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")

    def refuse(address):
        raise OSError(f"Timed out trying to connect to {address}")

    monkeypatch.setattr(distributed, "Client", refuse)
    with pytest.raises(ValueError, match="cannot connect to the scheduler 'tcp://127.0.0.1:1'"):
        run_scan(small_config, tmp_path, dask="tcp://127.0.0.1:1", progress=False, allow_import=True)


def test_summary_detects_the_decaying_limit(small_config, tmp_path):
    run_scan(small_config, tmp_path, workers=2, progress=False, allow_import=True)
    config, results, missing = summarize(tmp_path)
    assert missing == 0 and len(results) == 3
    for r in results:
        # power_cell makes the first candidate (wgf) decay like n^-1/2, the others flat
        assert r.decision.phase == "wgf" and r.decision.decided
        assert r.decision.slopes["wgf"][0] == pytest.approx(-0.5, abs=0.1)
        assert r.agrees == (r.regime.phase == "wgf")
        assert r.distances["wgf"].shape == (2, 2)


def test_decide_phase_uses_the_stated_rule_and_keeps_per_repeat_slopes():
    widths = np.array([32, 64, 128, 256])
    rng = np.random.default_rng(0)
    decay = widths ** -0.5 * (1 + 0.05 * rng.random((4, 4)))
    flat = np.ones((4, 4)) + 0.05 * rng.random((4, 4))
    d = decide_phase(widths, {"wgf": flat, "jump-poisson": decay})
    assert d.phase == "jump-poisson" and d.decided and d.width == 256
    assert d.slopes["jump-poisson"][0] == pytest.approx(-0.5, abs=0.05)
    assert d.slopes["jump-poisson"][1] < 0.05
    # one flat candidate alone: not falling, not growing -> no decision
    assert decide_phase(widths, {"wgf": flat}).phase == "undetermined"
    # two falling limits a factor 10 apart: the lower one
    assert decide_phase(widths, {"wgf": 10 * decay, "critical": decay}).phase == "critical"
    # ... but only 1.2x apart: undetermined, with the reason
    d = decide_phase(widths, {"wgf": 1.2 * decay, "critical": decay})
    assert d.phase == "undetermined" and "wgf is not clearly 2x farther" in d.reason
    # a diverged cell (inf) of the decaying limit: it cannot win
    broken = decay.copy()
    broken[1, -1] = np.inf
    assert decide_phase(widths, {"wgf": flat, "jump-poisson": broken}).phase != "jump-poisson"


@pytest.mark.parametrize("patch, message", [
    (dict(widths=[]), "widths"),
    (dict(widths=[0, 16]), "width"),
    (dict(widths=[16]), "two distinct"),
    (dict(scaling=[]), "at least one"),
    (dict(colour="red"), "unknown key"),
    (dict(scaling=[dict(tau="n**", keep="1")]), "malformed"),
    (dict(scaling=[dict(tau="1/n", keep="1/n", speed=3)]), "unknown key"),
    (dict(scaling=[dict(point=[0.5, 0.6, 0.1])]), "barycentric"),
    (dict(limits=["wgf", "sgd"]), "limit must be one of"),
    (dict(repeats=0), "repeats"),
    (dict(statistic="mean"), "statistic"),
    (dict(options=dict(start=datetime.date(2025, 1, 1))), "options must hold"),
])
def test_bad_configurations_are_rejected(patch, message):
    data = dict(widths=[16, 64], scaling=[dict(tau="1/n", keep="1/n")])
    data.update(patch)
    with pytest.raises(ValueError, match=message):
        config_from_dict(data)


def test_pool_workers_run_numba_with_one_thread(tmp_path):
    config = config_from_dict(dict(widths=[8, 16], repeats=1,
                                   cell_function="tests.phase_diagram.cells:numba_cell",
                                   scaling=[dict(tau="1/n", keep="0.5")]),
                             allow_import=True)
    run_scan(config, tmp_path, workers=2, progress=False, allow_import=True)
    records = _distances(tmp_path)
    assert len(records) == 2
    for distances in records.values():
        assert distances["wgf"][1:] == [1.0, 1.0]      # active threads, Numba pool size


def test_cell_functions_come_from_the_registry_unless_import_is_allowed(tmp_path):
    from phase_diagram.scan import CELL_FUNCTIONS, register_cell_function
    from tests.phase_diagram import cells

    table = dict(widths=[16, 64], repeats=1, scaling=[dict(tau="0.5*n**-0.5", keep="0.7")])
    with pytest.raises(ValueError, match="needs --allow-import"):
        config_from_dict(dict(table, cell_function=POWER_CELL))
    with pytest.raises(ValueError, match="cell_function must be one of"):
        config_from_dict(dict(table, cell_function="no_such_function"))
    imported = config_from_dict(dict(table, cell_function=POWER_CELL), allow_import=True)
    with pytest.raises(ValueError, match="needs --allow-import"):
        run_scan(imported, tmp_path / "refused", workers=1, progress=False)
    assert not (tmp_path / "refused").exists()
    register_cell_function("power_cell", cells.power_cell)
    try:
        registered = config_from_dict(dict(table, cell_function="power_cell"))
        # the cell identity names the function itself, whatever it is registered as
        assert [c.key for c in build_cells(registered)] == [c.key for c in build_cells(imported)]
        run_scan(registered, tmp_path / "scan", workers=1, progress=False)
        assert len(_distances(tmp_path / "scan")) == 2
    finally:
        del CELL_FUNCTIONS["power_cell"]


def test_sequential_summary_takes_each_scalings_first_decided_stage(tmp_path, monkeypatch):
    # stages n64 and n128 of a sequential scan; under the summary's rule scaling "a" is decided
    # at n32 (the first stage), "b" at n64 and "c" never: each gets its first decided stage
    # (a scan run with that rule stops there), else its latest
    import types
    from phase_diagram.scan import sequential

    def result(spec, phase, width):
        decision = types.SimpleNamespace(phase=phase, width=width,
                                         decided=phase != "undetermined")
        return types.SimpleNamespace(spec=spec, decision=decision)

    stages = {tmp_path: [result("a", "wgf", 32), result("b", "undetermined", 32),
                         result("c", "undetermined", 32)],
              tmp_path / "n64": [result("a", "undetermined", 64), result("b", "degenerate", 64),
                                 result("c", "undetermined", 64)],
              tmp_path / "n128": [result("a", "undetermined", 128),
                                  result("b", "undetermined", 128),
                                  result("c", "undetermined", 128)]}
    seen = []

    def summarize(path, flat_slope=None):
        seen.append(flat_slope)
        return types.SimpleNamespace(scalings=("a", "b", "c")), stages[path], 1

    monkeypatch.setattr(sequential, "summarize", summarize)
    monkeypatch.setattr(sequential, "stage_dirs", lambda out: [tmp_path / "n64",
                                                               tmp_path / "n128"])
    _, results, missing = sequential.summarize_sequential(tmp_path, flat_slope=0.15)
    assert [(r.decision.phase, r.decision.width) for r in results] == [
        ("wgf", 32), ("degenerate", 64), ("undetermined", 128)]
    assert missing == 3 and seen == [0.15] * 3
