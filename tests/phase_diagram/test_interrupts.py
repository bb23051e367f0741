"""Ctrl-C during a runner-based command: one line, exit status 130, no traceback, no orphan
worker, no half-written file; a rerun skips the cells kept and computes each missing one
once."""
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from meanfield_dropout.runtime.cells import run_cells
from phase_diagram.cli.main import main as pd_main
from phase_diagram.finder import phase_map

from ..processes import live_processes

ROOT = Path(__file__).resolve().parents[2]
# 144 cells (10 points x 2 widths x 8 repeats, less those over --budget at n = 512), the
# n = 512 ones first: seconds of work are left when the first record appears.
MAP = ["map", "--grid", "2", "--widths", "16,512", "--repeats", "8", "--horizon", "1",
       "--budget", "1", "--no-progress"]


def _sigint_default():
    """In the child before ``exec``: SIGINT as a terminal's foreground command has it.

    A command started with SIGINT ignored (e.g. the test run is a background job of a
    non-interactive shell, which ignores SIGINT in its children) keeps ignoring it, as Unix
    programs should; the Ctrl-C of a terminal reaches commands with the default action.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _session_processes(sid):
    """PIDs of the live processes of session ``sid`` (the command and its workers)."""
    return [pid for pid, (stat, _) in live_processes().items() if int(stat[3]) == sid]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_ctrl_c_during_a_map_stops_it_with_one_line_and_no_orphans(tmp_path, monkeypatch,
                                                                    capsys):
    out = tmp_path / "map"
    argv = [sys.executable, "-m", "phase_diagram", *MAP, "--out-dir", str(out), "-o",
            str(tmp_path / "m.png"), "--workers", "2"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_sigint_default)
    try:
        deadline = time.monotonic() + 300
        while not list((out / "cells").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_session_processes(proc.pid)) >= 3      # the command and its 2 workers
        os.killpg(proc.pid, signal.SIGINT)       # as a terminal's Ctrl-C: the whole group
        start = time.monotonic()
        _, err = proc.communicate(timeout=30)
        stopped = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    kept = len(list((out / "cells").glob("*.json")))
    assert proc.returncode == 130 and stopped < 10
    # a cold cache adds the workers' compile notices before it
    lines = [line for line in err.strip().splitlines()
             if not line.startswith("compiling kernels: first run only")]
    assert len(lines) == 1, err
    assert lines[0] == f"interrupted; {kept} of 144 cells kept in {out}, rerun to resume"
    # no orphan: the workers and multiprocessing's resource tracker (which exits once the
    # command's end closes its pipe) are gone within seconds, not left running
    deadline = time.monotonic() + 5
    while _session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session_processes(proc.pid) == []
    assert not [p for p in (out / "cells").iterdir() if p.suffix != ".json"]
    _resume_computes_only_the_missing_cells(argv[3:-2] + ["--workers", "1"], out, kept,
                                            monkeypatch, capsys)


def _resume_computes_only_the_missing_cells(argv, out, kept, monkeypatch, capsys):
    """Rerun the map in this process: the kept records are skipped and each missing cell is
    asked for once, with the simulation replaced by a stand-in (the real cells cost about
    20 s of CPU; the map tests compute real ones)."""
    kept_runs = {(r["width"], r["master_lr"], r["keep_prob"], r["seed"])
                 for r in map(json.loads, map(Path.read_text, (out / "cells").glob("*.json")))}
    asked = []

    def stand_in(width, master_lr, keep_prob, limits, horizon, seed, data, **_):
        asked.append((width, master_lr, keep_prob, seed))
        series = np.array([0.0, 0.1])
        return dict({name: dict(predictor=series, w2=series) for name in limits},
                    diverged=None)

    monkeypatch.setattr(phase_map, "measure_cell", stand_in)
    monkeypatch.setattr(phase_map, "run_cells", functools.partial(run_cells,
                                                                  always_spawn=False))
    monkeypatch.chdir(ROOT)
    assert pd_main(argv) == 0
    assert f"144 cells: {kept} already done, {144 - kept} computed" in capsys.readouterr().out
    assert len(asked) == len(set(asked)) == 144 - kept and not kept_runs & set(asked)
