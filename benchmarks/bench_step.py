"""Throughput of one engine step, as ratios to baselines measured in the same run.

For each width n, keep probability q and dtype, times one step of ``gd`` and ``dropout``
(m = 500 data points, d = 20, ReLU) after warm-up and prints

* GFLOP/s, counting 4·n·m·d + 6·n·m flops for a dense step (so a dropout step at q < 1 gets
  credit for the work it skips);
* that rate as a fraction of the machine's float64 matrix-multiply rate, measured here with
  the same thread count;
* the speed-up over the plain-NumPy reference step of ``tests/reference.py``.

Numba compile time is measured separately with a fresh cache directory.

Run: ``python benchmarks/bench_step.py [--widths 1000,5000,20000] [--repeats 5]``.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="bench-numba-"))
import numba  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import reference  # noqa: E402

from meanfield_dropout.engine import MASKS, Data, Rule, _run_chunk, init_particles  # noqa: E402
from meanfield_dropout.network import blas_single_thread  # noqa: E402

POINTS, DIM = 500, 20


def matmul_rate(size=2000, repeats=3):
    """Best float64 GEMM rate (GFLOP/s) of numpy's BLAS over a few runs."""
    a = np.random.default_rng(0).standard_normal((size, size))
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def engine_step_time(X, Z, y, variant, keep_prob, steps, repeats):
    """Seconds per step of the jitted kernel (best of ``repeats`` chunks of ``steps``)."""
    rng = np.random.default_rng(1)
    masks = rng.random((steps, X.shape[0])) < keep_prob
    rule = Rule(*MASKS[variant], keep_prob, 1e-3, 1.0 / X.shape[0], 0.0, 0, 0, False, 1)
    data = Data(Z, np.ascontiguousarray(Z.T), y[None, :], np.empty((Z.shape[1], 0), Z.dtype),
                np.empty((1, 0), Z.dtype))
    args = (rule, data, masks, masks[:0], np.empty((steps, 0), np.int64),
            np.zeros(steps, bool), np.zeros(steps), np.zeros(steps), 0)
    with blas_single_thread():
        return min(_timed(lambda: _run_chunk(X.copy(), *args)) for _ in range(repeats)) / steps


def numpy_step_time(X, Z, y, keep_prob):
    mask = np.random.default_rng(1).random(X.shape[0]) < keep_prob
    return min(_timed(lambda: reference.step(X, Z, y, "dropout", mask, mask, keep_prob, 1e-3,
                                             1.0 / X.shape[0], 0.0)) for _ in range(3))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1000,5000,20000")
    parser.add_argument("--keep-probs", default="1,0.7,0.1")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    keep_probs = [float(q) for q in args.keep_probs.split(",")]
    rng = np.random.default_rng(0)
    Z64 = rng.standard_normal((POINTS, DIM))
    y64 = rng.standard_normal(POINTS)

    X = init_particles(50, DIM)
    compile_time = _timed(lambda: engine_step_time(X, Z64, y64, "dropout", 0.5, 1, 1))
    compile_time += _timed(lambda: engine_step_time(X.astype(np.float32), Z64.astype(np.float32),
                                                    y64.astype(np.float32), "gd", 1.0, 1, 1))
    peak = matmul_rate()
    print(f"threads: numba {numba.get_num_threads()}; compile (float64 + float32): "
          f"{compile_time:.1f} s; float64 matmul: {peak:.1f} GFLOP/s")
    print(f"{'n':>6} {'q':>4} {'dtype':>7} {'variant':>8} {'GFLOP/s':>8} {'of matmul':>9} "
          f"{'vs NumPy':>8} {'vs q=1':>7}")
    for n in widths:
        X64 = init_particles(n, DIM, seed=n)
        flops = 4 * n * POINTS * DIM + 6 * n * POINTS
        numpy_time = numpy_step_time(X64, Z64, y64, 1.0)
        for dtype in (np.float64, np.float32):
            X, Z, y = X64.astype(dtype), Z64.astype(dtype), y64.astype(dtype)
            dense = None
            for q in keep_probs:
                for variant in ("gd", "dropout"):
                    if variant == "gd" and q != 1.0:
                        continue
                    sec = engine_step_time(X, Z, y, variant, q, 5, args.repeats)
                    if variant == "dropout" and q == 1.0:
                        dense = sec
                    speedup = f"{dense / sec:7.1f}" if dense and variant == "dropout" else ""
                    print(f"{n:6d} {q:4.2g} {np.dtype(dtype).name:>7} {variant:>8} "
                          f"{flops / sec / 1e9:8.2f} {flops / sec / 1e9 / peak:9.1%} "
                          f"{numpy_time / sec:8.1f} {speedup:>7}", flush=True)


if __name__ == "__main__":
    main()
