"""Cost of the teacher–student figure against the BLAS products it cannot avoid, in one run.

One coupled run of the figure (GD, dropout, RaM and PN + RaM from one seed, the paper's
settings: m = 500 + 500 validation points, d = 20, q = 0.7, losses every 5 steps) at width
n is timed on one Numba and one BLAS thread, as a worker of the figure runs it, for
``--steps`` steps, and divided by n × steps: microseconds per neuron-step of the four
variants together.

The floor beside it is what the same run's BLAS products alone take, with nothing else: each
neuron a pass runs costs one product row of a block (64 neurons) of the pre-activations,
(64×d)(d×m), and each neuron a backward pass moves one row of the sign product,
(64×m)(m×(d+1)); both are timed here with NumPy's BLAS on one thread. Per step, for width n
and keep probability q, the variants run these rows (expected counts):

* forward: n (GD) + qn (dropout) + n (RaM) + qn + q(1 − q)n (PN + RaM: its forward mask,
  then the signs of the backward neurons outside it);
* on a loss-record step, also 4n (validation loss of each variant) and (1 − q)n each for the
  unmasked train loss of dropout and PN + RaM (whose dropped neurons then cover PN + RaM's
  extra signs); GD's and RaM's train loss is their forward pass;
* backward: n (GD) + 3qn (dropout, RaM and PN + RaM move the neurons of the mask M).

The full figure is then extrapolated to the settings' widths, repeats and trajectory run on
``--workers`` workers, assuming perfect packing (measured figure runs pack to about 97%).
With ``--figure`` the full figure also runs, and its wall time is printed.

Run: ``python benchmarks/bench_teacher_student.py [--width 5000] [--steps 200] [--figure]``;
the first line says which BLAS kernels ran. Where the environment chooses OpenBLAS's kernels
(``OPENBLAS_CORETYPE``, as on this project's machine), prefix the command with
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` to time OpenBLAS's own choice.
"""
import argparse
import math
import sys
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from meanfield_dropout.kernels.blocks import BLOCK  # noqa: E402
from meanfield_dropout.data import teacher_student as teacher_student_data  # noqa: E402
from meanfield_dropout.experiments import teacher_student  # noqa: E402
from meanfield_dropout.experiments.teacher_student import (  # noqa: E402
    TeacherStudentSettings, _cell)
from meanfield_dropout.runtime.threads import blas_single_thread  # noqa: E402
from timing import best_seconds, machine_header  # noqa: E402


def block_product_seconds(points, dim, dtype, repeats):
    """Seconds per neuron of the two block products, NumPy's BLAS on the calling thread:
    the pre-activations (BLOCK×d)(d×m) and the sign product (BLOCK×m)(m×(d+1))."""
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((BLOCK, dim)).astype(dtype)
    inputs_t = rng.standard_normal((dim, points)).astype(dtype)
    pre = np.empty((BLOCK, points), dtype=dtype)
    signs = (rng.standard_normal((BLOCK, points)) > 0).astype(dtype)
    weighted = rng.standard_normal((points, dim + 1)).astype(dtype)
    sums = np.empty((BLOCK, dim + 1), dtype=dtype)
    blocks = 50

    def forward():
        for _ in range(blocks):
            np.dot(weights, inputs_t, pre)

    def backward():
        for _ in range(blocks):
            np.dot(signs, weighted, sums)
    per_neuron = blocks * BLOCK
    return (best_seconds(forward, repeats * 3) / per_neuron,
            best_seconds(backward, repeats * 3) / per_neuron)


def rows_per_step(keep_prob, loss_every):
    """Expected (forward, backward) neuron rows per step of the four variants, per neuron."""
    q = keep_prob
    forward = 1 + q + 1 + q + q * (1 - q)
    record = 4 + 2 * (1 - q) - q * (1 - q)
    return forward + record / loss_every, 1 + 3 * q


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--figure", action="store_true",
                        help="also run the full figure (float64; 1 min 40 s to 4 min here, by kernels)")
    args = parser.parse_args()
    full = TeacherStudentSettings()
    data = teacher_student_data(dim=full.dim, data_points=full.data_points, seed=full.seed)
    forward_rows, backward_rows = rows_per_step(full.keep_prob, full.loss_every)
    neuron_steps = (sum(full.widths) * full.repeats + full.trajectory_width) * full.steps
    print(machine_header())
    print(f"width {args.width}, {args.steps} steps, one Numba and one BLAS thread; "
          f"rows per neuron-step: forward {forward_rows:.3f}, backward {backward_rows:.3f}; "
          f"full figure {neuron_steps / 1e6:.0f} M neuron-steps on {args.workers} workers")
    print(f"{'dtype':>7} | {'us/n-step':>9} {'BLAS fw':>8} {'BLAS bw':>8} {'floor':>6} "
          f"{'floor/run':>9} | {'figure s':>8} {'floor s':>7}")
    numba.set_num_threads(1)
    with blas_single_thread():
        for dtype in ("float64", "float32"):
            s = TeacherStudentSettings(steps=args.steps, early_step=min(100, args.steps),
                                       dtype=dtype)
            seed = np.random.SeedSequence(0)
            _cell(data, s, 200, seed, False)  # compile and warm up
            run = best_seconds(lambda: _cell(data, s, args.width, seed, False), args.repeats)
            per_neuron_step = run / (args.width * args.steps)
            fw, bw = block_product_seconds(full.data_points, full.dim, np.dtype(dtype),
                                           args.repeats)
            floor = forward_rows * fw + backward_rows * bw
            print(f"{dtype:>7} | {per_neuron_step * 1e6:9.3f} {fw * 1e6:8.3f} {bw * 1e6:8.3f} "
                  f"{floor * 1e6:6.3f} {floor / per_neuron_step:9.1%} | "
                  f"{neuron_steps * per_neuron_step / args.workers:8.0f} "
                  f"{neuron_steps * floor / args.workers:7.0f}", flush=True)
    if args.figure:
        start = time.perf_counter()
        teacher_student.run(full, progress=False, workers=args.workers)
        seconds = time.perf_counter() - start
        print(f"full figure, float64, {args.workers} workers: {seconds:.0f} s "
              f"({math.floor(seconds / 60)} min {seconds % 60:.0f} s)")


if __name__ == "__main__":
    main()
