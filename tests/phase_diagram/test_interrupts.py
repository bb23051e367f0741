"""Ctrl-C during a runner-based command: one line, exit status 130, no traceback, no orphan
worker, no half-written file; a rerun resumes with the cells kept."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
def test_ctrl_c_during_a_map_stops_it_with_one_line_and_no_orphans(tmp_path):
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
    again = subprocess.run(argv[:-2] + ["--workers", "1"], cwd=ROOT, env=env, text=True,
                           capture_output=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{kept} already done" in again.stdout
