"""Finite-width phase maps: the grid, its scalings' theory phases, resumable cells, summary."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout.plots.figures import save_figure
from phase_diagram.finder.phase_map import (MapConfig, build_map_cells, map_points, run_map,
                                            simplex_grid, summarize_map)
from phase_diagram.plots import phase_map_figure
from phase_diagram.theory.phases import classify


@pytest.mark.parametrize("divisions", [4, 7, 12])
def test_grid_covers_the_simplex(divisions):
    grid = np.array([[float(x) for x in p.u] for p in simplex_grid(divisions)])
    assert np.allclose(grid.sum(axis=1), 1) and (grid >= 0).all() and (grid[:, 0] > 0).all()
    assert len(grid) == (divisions + 1) * (divisions + 2) // 2 - (divisions + 1)
    samples = np.random.default_rng(0).dirichlet(np.ones(3), size=2000)
    # every point of the simplex is within one grid step (max norm) of a grid point
    gaps = np.abs(samples[:, None, :] - grid[None, :, :]).max(axis=2).min(axis=1)
    assert gaps.max() <= 1 / divisions + 1e-12


def _geometric_phase(u):
    """The phase of the simplex point u from the theory's regions (notes §3.3), τ₀ = q₀ = 1/2."""
    u_n, u_tau, u_q = u
    if u == (1, 0, 0):
        return "jump-bernoulli"
    if u_n == u_tau == u_q:
        return "critical"
    if u_q > min(u_n, u_tau):
        return "degenerate"
    if u_q == u_n:
        return "penalized-wgf"
    if u_q == u_tau:
        return "jump-poisson"
    return "wgf"


def test_points_map_back_to_scalings_with_the_right_theory_phase():
    points = map_points(7)         # 1/3 is off this grid: the critical point is added
    kinds = {p.kind for p in points}
    assert kinds == {"grid", "line", "special"}
    assert len({p.u for p in points}) == len(points)
    for point in points:
        regime = classify(point.scaling())
        assert regime.phase == _geometric_phase(point.u), point.label
        assert np.allclose(regime.simplex_limit, [float(x) for x in point.u])
    line = [p for p in points if p.kind == "line"]
    assert {classify(p.scaling()).phase for p in line} == {"jump-poisson", "penalized-wgf"}
    tau, keep = points[0].values(256)        # the vertex (1, 0, 0): tau = q = 1/2
    assert points[0].u == (Fraction(1), Fraction(0), Fraction(0)) and tau == keep == 0.5


def test_config_validation():
    for bad in (dict(grid=1), dict(widths=(8,)), dict(repeats=1), dict(budget=0),
                dict(horizon=-1)):
        with pytest.raises(ValueError):
            MapConfig(**bad)


# the settings of `map --grid 2 --widths 16,32 --repeats 2 --horizon 1 --budget 1`
TINY = MapConfig(grid=2, widths=(16, 32), repeats=2, horizon=1.0, budget=1.0)


def _numbers(out):
    return {p.name: json.loads(p.read_text())["distances"]
            for p in sorted((out / "cells").glob("*.json"))}


@pytest.fixture(scope="module")
def tiny_map(tmp_path_factory):
    """``(directory, counts)`` of the map TINY run on one worker (the tests only read it)."""
    out = tmp_path_factory.mktemp("tiny") / "a"
    return out, run_map(TINY, out, workers=1, progress=False)


def test_map_runs_resumes_and_does_not_depend_on_workers_or_dask(tiny_map, tmp_path):
    cells, beyond = build_map_cells(TINY)
    assert len(cells) == 2 * 2 * len({c.point.label for c in cells}) and len(cells) > 0
    first, counts = tiny_map
    assert counts["computed"] == len(cells)
    again = run_map(TINY, first, workers=1, progress=False)
    assert again["computed"] == 0 and again["skipped"] == len(cells)
    run_map(TINY, tmp_path / "b", workers=2, progress=False)
    assert _numbers(first) == _numbers(tmp_path / "b")
    if importlib.util.find_spec("distributed") is not None:
        run_map(TINY, tmp_path / "dask", workers=2, dask="local", progress=False)
        assert _numbers(tmp_path / "dask") == _numbers(first)
    summary = summarize_map(first)
    assert summary.missing == 0
    assert set(summary.agreement) == {16, 32}
    assert all(0 <= a["describes"] <= 1 for a in summary.agreement.values())
    paths = save_figure(phase_map_figure(summary), tmp_path / "map.png")
    assert paths[0].stat().st_size > 10_000


def test_map_command_resumes_after_a_kill(tiny_map, tmp_path):
    # kill the command once two cells are written, then resume: nothing lost, nothing twice
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "phase_diagram", "map", "--grid", "2", "--widths", "16,32",
            "--repeats", "2", "--horizon", "1", "--budget", "1", "--out-dir", str(out), "-o",
            str(tmp_path / "k.png"), "--workers", "1", "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen(argv, cwd=root, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list((out / "cells").glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / "cells").glob("*.json")))
    assert done >= 2
    counts = run_map(TINY, out, workers=1, progress=False)
    assert counts["skipped"] == done and counts["computed"] == counts["total"] - done
    assert _numbers(out) == _numbers(tiny_map[0])


def test_summary_of_a_directory_without_a_map_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no phase map"):
        summarize_map(tmp_path)
