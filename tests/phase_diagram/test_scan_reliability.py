"""Scans never trust a record blindly, record divergence as such, guard their size, share a
directory between two scans and end their workers with their process."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout.runtime.memory import MemoryLimitError
from phase_diagram.cli.main import main
from phase_diagram.scan import (DIVERGED, ScanWarning, build_cells, config_from_dict,
                                load_config, run_scan, summarize)
from phase_diagram.scan.records import scan_store

from ..processes import live_processes

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "examples" / "phase_scan_small.toml"
DIVERGING = "tests.phase_diagram.cells:diverging_cell"


def _table(**kw):
    table = dict(seed=3, widths=[16, 64], repeats=2, horizon=1.0, cell_function=DIVERGING,
                 scaling=[dict(name="blows up", tau="0.5*n**-0.5", keep="0.7"),
                          dict(name="fine", tau="0.01*n**-0.5", keep="0.7")])
    table.update(kw)
    return table


def _records(out):
    return {p.stem: json.loads(p.read_text()) for p in (Path(out) / "cells").glob("*.json")}


def test_diverged_cells_are_recorded_with_their_step_and_detected_as_diverged(tmp_path,
                                                                              capsys):
    config = config_from_dict(_table(options=dict(blow_up_above=0.1)), allow_import=True)
    run_scan(config, tmp_path, workers=1, progress=False, allow_import=True)
    diverged = [r for r in _records(tmp_path).values() if r["diverged"]]
    # tau_16 = 0.125 > 0.1 diverges, tau_64 = 0.0625 does not
    assert len(diverged) == 2 and {r["identity"]["width"] for r in diverged} == {16}
    assert all(r["distances"] == {} and r["diverged"]["step"] == 7 for r in diverged)
    _, results, missing = summarize(tmp_path)
    blows, fine = results
    assert missing == 0
    assert blows.decision.phase == DIVERGED and not blows.decision.decided
    assert "2 cell(s) diverged, the first at n = 16" in blows.decision.reason
    # a diverged scaling is no decision about its limit: never counted as agreeing
    assert blows.agrees is None and [d["width"] for d in blows.diverged] == [16, 16]
    assert np.isnan(blows.distances["wgf"][:, 0]).all()
    assert fine.decision.phase == "wgf" and not fine.diverged
    assert main(["plot", str(tmp_path), "-o", str(tmp_path / "d.png")]) == 0
    out = capsys.readouterr().out
    assert "detected=diverged" in out and "diverged at step 7" in out
    assert (tmp_path / "d_panels.png").stat().st_size > 0


def test_dropout_exploding_as_n_grows_is_degenerate(tmp_path):
    # tau_n = 0.5 n^-1/2 below 0.07 from n = 64 on: dropout explodes at every width of the
    # window (64..512) and at no repeat of n = 16, the order of a degenerate scaling
    config = config_from_dict(_table(widths=[16, 64, 128, 256, 512],
                                     options=dict(blow_up_below=0.07),
                                     scaling=_table()["scaling"][:1]), allow_import=True)
    run_scan(config, tmp_path, workers=1, progress=False, allow_import=True)
    decision = summarize(tmp_path)[1][0].decision
    assert decision.phase == "degenerate" and decision.decided
    assert decision.reason == ("dropout left its bounds in 8 of 8 cells, at every width "
                               "n = 64..512, and in none at n = 16")


def test_non_finite_distances_are_a_divergence_not_a_distance(tmp_path):
    config = config_from_dict(_table(options=dict(nan=True), scaling=_table()["scaling"][1:]),
                              allow_import=True)
    run_scan(config, tmp_path, workers=1, progress=False, allow_import=True)
    records = list(_records(tmp_path).values())
    assert all(r["diverged"]["step"] is None and "non-finite" in r["diverged"]["message"]
               for r in records)
    assert summarize(tmp_path)[1][0].decision.phase == DIVERGED


def test_the_issue_blow_up_is_a_diverged_scan_cell(tmp_path):
    """converge --tau 30*n**-0.5 --keep 0.5 as a scan: dropout leaves 10^6 × its initial scale;
    the cells say so with the step and the phase is 'diverged' (not a limit's phase, nor
    degenerate: it explodes at every width it ran, as a step too large at small widths)."""
    config = config_from_dict(dict(widths=[20, 40], repeats=1, horizon=300.0,
                                   scaling=[dict(tau="30*n**-0.5", keep="0.5")]))
    run_scan(config, tmp_path, workers=1, progress=False)
    for record in _records(tmp_path).values():
        assert "'dropout' diverged at step" in record["diverged"]["message"]
        assert record["diverged"]["step"] > 0
    assert summarize(tmp_path)[1][0].decision.phase == DIVERGED


def test_invalid_records_are_recomputed_and_left_out_of_summaries(tmp_path):
    config = load_config(SMALL, allow_import=True)
    reference = tmp_path / "reference"
    run_scan(config, reference, workers=1, progress=False, allow_import=True)
    out = tmp_path / "scan"
    out.mkdir()
    (out / "cells").mkdir()
    for path in (reference / "cells").glob("*.json"):
        (out / "cells" / path.name).write_text(path.read_text())
    (out / "manifest.json").write_text((reference / "manifest.json").read_text())
    cells = build_cells(config)
    store = scan_store(out, {})
    store.path(cells[0].key).write_text('{"distances": {}}')
    store.path(cells[1].key).write_text(store.path(cells[2].key).read_text())
    store.path(cells[3].key).write_text('{"key": "trunc')
    good = json.loads(store.path(cells[4].key).read_text())
    good["distances"]["wgf"][1] = "x"
    store.path(cells[4].key).write_text(json.dumps(good))
    moved = json.loads(store.path(cells[5].key).read_text())
    assert moved["dropout_motion"] is None          # its cell function does not report it
    moved["dropout_motion"] = -1.0
    store.path(cells[5].key).write_text(json.dumps(moved))
    with pytest.warns(ScanWarning, match="5 cell record.*invalid and are left out"):
        _, results, missing = summarize(out)
    assert missing == 5
    # the cells' widths are dropped for their scaling, and the count says so
    assert results[0].widths == () and results[1].widths == (64,)
    with pytest.warns(ScanWarning, match="invalid and are recomputed"):
        counts = run_scan(config, out, workers=1, progress=False, allow_import=True)
    assert counts["computed"] == 5 and counts["invalid"] == 5 and counts["skipped"] == 7
    assert {k: r["distances"] for k, r in _records(out).items()} == \
        {k: r["distances"] for k, r in _records(reference).items()}


@pytest.mark.parametrize("manifest, message", [
    ("[1, 2]", "not a scan manifest"),
    ('{"cells": []}', "not a scan manifest"),
    ('{"config": {}, "cells": 3}', "'cells' must be a list"),
    ('{"config": {"widths": [0, 1]}, "cells": []}', "malformed config \\(no 'scaling'"),
    ('{"config": {"scaling": [{"name": "a", "tau": "1/n", "keep": "1/n"}], "widths": [0, 1], '
     '"limits": ["wgf"]}, "cells": []}', "invalid config: width must be"),
    ('{"config": {"scaling": [{"tau": "1/n"}], "widths": [8, 16], "limits": ["wgf"]}, '
     '"cells": []}', "malformed config"),
    ('{"config": {"scaling": 3, "widths": [8, 16], "limits": ["wgf"]}, "cells": []}',
     "malformed config"),
    ("{", "unreadable"),
])
def test_malformed_manifests_are_one_line_errors(tmp_path, manifest, message, capsys):
    (tmp_path / "manifest.json").write_text(manifest)
    with pytest.raises(ValueError, match=message):
        summarize(tmp_path)
    assert main(["plot", str(tmp_path), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "manifest.json" in err and len(err.strip().splitlines()) == 1


def test_a_manifest_whose_cells_differ_from_its_config_is_refused(tmp_path):
    config = load_config(SMALL, allow_import=True)
    run_scan(config, tmp_path, workers=1, progress=False, allow_import=True)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["cells"] = manifest["cells"][:-1]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="lists other cells than its config defines"):
        summarize(tmp_path)


def test_scan_size_and_memory_are_checked_before_anything_runs(tmp_path):
    huge = config_from_dict(_table(repeats=10 ** 9), allow_import=True)
    start = time.perf_counter()
    with pytest.raises(MemoryLimitError, match="the 4000000000 cells of the scan"):
        run_scan(huge, tmp_path / "huge", workers=1, progress=False, allow_import=True)
    assert time.perf_counter() - start < 5
    wide = config_from_dict(dict(widths=[16, 10 ** 12], repeats=1,
                                 scaling=[dict(tau="0.5*n**-0.5", keep="0.7")]))
    with pytest.raises(MemoryLimitError, match="width 1000000000000"):
        run_scan(wide, tmp_path / "wide", workers=1, progress=False)
    assert not (tmp_path / "huge").exists() and not (tmp_path / "wide").exists()


def _scan_command(out, workers=1):
    return [sys.executable, "-m", "phase_diagram", "scan", str(SMALL), "--out-dir", str(out),
            "--workers", str(workers), "--no-progress", "--allow-import"]


def test_two_scans_into_one_directory_compute_each_cell_once(tmp_path):
    marks = tmp_path / "markers"
    marks.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PHASE_TEST_MARKERS=str(marks),
               PHASE_TEST_SLEEP="0.3")
    out = tmp_path / "scan"
    procs = [subprocess.Popen(_scan_command(out), env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    cells = build_cells(load_config(SMALL, allow_import=True))
    counts = {p.stem: len(p.read_text().splitlines()) for p in marks.glob("*.count")}
    assert counts == {str(c.seed): 1 for c in cells}          # each cell computed once
    assert set(_records(out)) == {c.key for c in cells}
    assert any("by another scan" in stdout for stdout, _ in outputs)


def _children(pid):
    """PIDs of the pool workers of process ``pid`` (spawned children)."""
    return [child for child, (stat, cmdline) in live_processes().items()
            if int(stat[1]) == pid and b"spawn_main" in cmdline]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_pool_workers_exit_when_the_scan_process_is_killed(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PHASE_TEST_SLEEP="60")
    proc = subprocess.Popen(_scan_command(tmp_path / "scan", workers=2), env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 60
        workers = []
        while len(workers) < 2 and time.time() < deadline:
            time.sleep(0.2)
            workers = _children(proc.pid)
        assert len(workers) == 2
        time.sleep(1.0)                      # the workers are inside their 60 s cells
        os.kill(proc.pid, signal.SIGKILL)    # the scan process alone, not its group
        proc.wait()
        deadline = time.time() + 10
        while set(workers) & set(live_processes()) and time.time() < deadline:
            time.sleep(0.1)
        assert not set(workers) & set(live_processes())
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
