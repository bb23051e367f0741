"""What the benchmarks share: best wall (or CPU) time of a call, the machine's matmul rate,
the BLAS kernels that ran, and the header that names the machine, date and commit of a run."""
import datetime
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def best_seconds(run, repeats=3, clock=time.perf_counter):
    """Best time of ``run()`` over ``repeats`` calls, after one warm-up call: wall time, or
    the ``clock`` given (``time.process_time``: the process's CPU time)."""
    run()
    best = np.inf
    for _ in range(repeats):
        start = clock()
        run()
        best = min(best, clock() - start)
    return best


def matmul_rate(dtype=np.float64, threads=None, size=2000, repeats=3):
    """Best GEMM rate (GFLOP/s) of NumPy's BLAS on ``size``² matrices in ``dtype``, with
    ``threads`` BLAS threads (default: all)."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(dtype)
    with threadpool_limits(limits=threads, user_api="blas"):
        return 2 * size ** 3 / best_seconds(lambda: a @ a, repeats) / 1e9


def blas_kernels():
    """The loaded BLAS libraries, their versions and kernel sets, and the environment
    variables that choose OpenBLAS's kernels (``OPENBLAS_CORETYPE``, ``OPENBLAS_L2_SIZE``).

    A product's speed depends on the kernels: on this project's AMD machine the environment
    sets ``OPENBLAS_CORETYPE=Haswell``, and OpenBLAS's own choice (both variables unset in
    the benchmark's command) is its SkylakeX kernels, twice as fast on the engine's blocks.
    """
    libraries = ", ".join(
        f"{info.get('internal_api')} {info.get('version')} {info.get('architecture') or ''}".strip()
        for info in threadpool_info() if info.get("user_api") == "blas")
    chosen = ", ".join(f"{name}={os.environ[name]}"
                       for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if name in os.environ)
    return f"BLAS: {libraries} ({chosen or 'OPENBLAS_CORETYPE unset: OpenBLAS chose'})"


def cpu_model():
    """The processor's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit():
    """The repository's commit (short hash, ``+dirty`` with uncommitted changes), or
    ``unknown`` outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine_header():
    """The lines every benchmark prints first: machine (CPU, cores, load), BLAS kernel set,
    date (UTC) and commit, so that a table copied to the docs carries where it was measured."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"machine: {cpu_model()}, {os.cpu_count()} cores, load average {load:.1f}\n"
            f"{blas_kernels()}\n"
            f"date: {now}; commit: {commit()}")
