"""Cost of an engine step, as ratios to baselines measured in the same run.

For each width n and dtype (m = 500 data points, d = 20, ReLU, the teacher–student sizes) it
times, through the public :func:`meanfield_dropout.simulate` (per step: the run of 2k steps
less the run of k steps, so a call's fixed cost cancels),

* a dense ``gd`` step (loss recorded only at the end), as a fraction of the machine's matrix
  multiply rate in that dtype, measured here with the same threads; flops are counted as a
  dense step, 4·n·m·d + 6·n·m; beside it, the same fraction for the step's two products
  with the data done alone by NumPy's BLAS (the ceiling of a step built on BLAS products);
* ``dropout`` at q = 1, 0.7, 0.1 (cost should follow the kept neurons);
* ``dropout`` at q = 0.7 with the loss recorded every step (the default) and the record's
  extra cost as a fraction of one forward pass;
* the plain-NumPy reference step of ``tests/reference.py`` (widths ≤ 20 000) and, where JAX
  is installed (the ``bench`` extra), a compiled ``jit`` + ``lax.scan`` peer of the default
  dropout loop (``benchmarks/jax_peer.py``); for both, how many times faster the engine is.

Run: ``python benchmarks/bench_step.py [--widths 1000,5000,20000,100000] [--steps 40]``.
Numba compile time is measured with a fresh cache directory.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from meanfield_dropout import init_particles, simulate  # noqa: E402
from meanfield_dropout.kernels.blocks import make_workspace  # noqa: E402
from meanfield_dropout.kernels.activations import ACTIVATIONS  # noqa: E402
from meanfield_dropout.kernels.core import _forward_sums  # noqa: E402
from meanfield_dropout.kernels.structs import Kept, Rows, Weights  # noqa: E402
from meanfield_dropout.network import inputs_data  # noqa: E402
from meanfield_dropout.runtime.threads import blas_single_thread  # noqa: E402
from tests import reference  # noqa: E402
from timing import best_seconds, machine_header, matmul_rate  # noqa: E402

POINTS, DIM = 500, 20


def step_time(Z, y, X, variant, keep_prob, steps, repeats, record):
    """Seconds per step of ``simulate``: the best run of 2·``steps`` steps less the best of
    ``steps`` steps, over ``steps`` (a call's fixed cost, validation and set-up, cancels).

    ``record``: the loss is recorded every step (the default of ``simulate``), else only at
    the end.
    """
    kw = dict(initial=X, master_lr=1e-3, keep_prob=keep_prob, variants=(variant,),
              dtype=X.dtype.name, progress=False)

    def run(k):
        return best_seconds(lambda: simulate(Z, y, steps=k,
                                             loss_every=1 if record else k + 1, **kw), repeats)
    return (run(2 * steps) - run(steps)) / steps


def products_time(Z, X, repeats):
    """Seconds of the step's two products with the data alone, NumPy's BLAS, all threads:
    (n×d)(d×m) for the pre-activations and (n×m)(m×d) for the input-weight gradients."""
    n, d = X.shape[0], Z.shape[1]
    weights = np.ascontiguousarray(X[:, 1:1 + d])
    Zt = np.ascontiguousarray(Z.T)
    pre = np.empty((n, Z.shape[0]), dtype=X.dtype)
    grad = np.empty((n, d), dtype=X.dtype)

    def run():
        np.dot(weights, Zt, pre)
        np.dot(pre, Z, grad)
    return best_seconds(run, repeats * 3)


def forward_time(Z, X, repeats):
    """Seconds of one unmasked forward pass (the kernel a loss record runs)."""
    n, m = X.shape[0], Z.shape[0]
    data = inputs_data(Z, 1, False, ACTIVATIONS["relu"])
    work = make_workspace(n, 1, Z.shape[1], m, X.dtype)
    out = np.empty((1, m), dtype=X.dtype)
    kept = Kept(np.empty((0, m), dtype=X.dtype), np.empty((0, 0), dtype=np.uint8),
                np.empty(0, dtype=np.int64))

    def run():
        with blas_single_thread():
            _forward_sums(X, data, Rows(np.arange(n), n), Weights(1.0, 1.0 / n, n), kept, out,
                          out[:, :0], work)
    return best_seconds(run, repeats * 3)


def numpy_step_time(Z, y, X, repeats):
    mask = np.random.default_rng(1).random(X.shape[0]) < 0.7
    return best_seconds(lambda: reference.step(X, Z, y, "dropout", mask, mask, 0.7, 1e-3,
                                        1.0 / X.shape[0], 0.0), repeats)


def jax_time(Z, y, X, steps, repeats):
    try:
        from jax_peer import dropout_run_time
    except ImportError:
        return None
    return dropout_run_time(Z, y, X, 0.7, 1e-3, steps, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="1000,5000,20000,100000")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-jax", action="store_true", help="skip the JAX peer")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    rng = np.random.default_rng(0)
    Z64, y64 = rng.standard_normal((POINTS, DIM)), rng.standard_normal(POINTS)

    start = time.perf_counter()
    for dtype in (np.float64, np.float32):
        X = init_particles(50, DIM).astype(dtype)
        for variant in ("gd", "dropout"):
            simulate(Z64.astype(dtype), y64.astype(dtype), initial=X, master_lr=1e-3, steps=2,
                     keep_prob=0.5, variants=(variant,), dtype=np.dtype(dtype).name,
                     progress=False)
    compile_time = time.perf_counter() - start
    rates = {np.float64: matmul_rate(np.float64), np.float32: matmul_rate(np.float32)}
    jax_missing = args.no_jax
    if not jax_missing:
        try:
            import jax  # noqa: F401
        except ImportError:
            jax_missing = True
            print("JAX is not installed (pip install '.[bench]'): the JAX peer is skipped")
    print(machine_header())
    print(f"numba threads {numba.get_num_threads()}; compile (float64 + float32, gd + dropout): "
          f"{compile_time:.1f} s; matmul float64 {rates[np.float64]:.1f} GFLOP/s, "
          f"float32 {rates[np.float32]:.1f} GFLOP/s")
    print(f"{'n':>6} {'dtype':>7} | {'gd ms':>7} {'of mm':>6} {'BLAS':>6} | {'q=1':>6} "
          f"{'q=.7':>6} {'q=.1':>6} {'1/.1':>5} | {'.7+rec':>7} {'rec/fw':>6} | {'us/neur':>7} "
          f"{'xNumPy':>6} {'xJAX':>5}")
    for n in widths:
        X64 = init_particles(n, DIM, seed=n)
        steps = max(3, min(args.steps, args.steps * 5000 // n))
        for dtype in (np.float64, np.float32):
            X, Z, y = X64.astype(dtype), Z64.astype(dtype), y64.astype(dtype)
            gd = step_time(Z, y, X, "gd", 1.0, steps, args.repeats, False)
            dense = {q: step_time(Z, y, X, "dropout", q, steps, args.repeats, False)
                     for q in (1.0, 0.7, 0.1)}
            recorded = step_time(Z, y, X, "dropout", 0.7, steps, args.repeats, True)
            forward = forward_time(Z, X, args.repeats)
            products = products_time(Z, X, args.repeats)
            flops = 4 * n * POINTS * DIM + 6 * n * POINTS
            numpy_ratio = (f"{numpy_step_time(Z, y, X, args.repeats) / dense[0.7]:6.1f}"
                           if n <= 20000 else f"{'':>6}")
            jax_ratio = f"{'':>5}"
            if not jax_missing and n <= 20000:
                jax_step = jax_time(Z, y, X, steps, args.repeats)
                jax_ratio = f"{jax_step / recorded:5.2f}"
            print(f"{n:6d} {np.dtype(dtype).name:>7} | {gd * 1e3:7.2f} "
                  f"{flops / gd / 1e9 / rates[dtype]:6.1%} "
                  f"{4 * n * POINTS * DIM / products / 1e9 / rates[dtype]:6.1%} | "
                  f"{dense[1.0] * 1e3:6.2f} "
                  f"{dense[0.7] * 1e3:6.2f} {dense[0.1] * 1e3:6.2f} "
                  f"{dense[1.0] / dense[0.1]:5.1f} | {recorded * 1e3:7.2f} "
                  f"{(recorded - dense[0.7]) / forward:6.2f} | {recorded / n * 1e6:7.3f} "
                  f"{numpy_ratio} {jax_ratio}", flush=True)


if __name__ == "__main__":
    main()
