"""Cost of a step of the MNIST experiment (d = 784, n = 4000, batch 64) against the matmul rate.

For float32 and float64 it times, through the public :func:`meanfield_dropout.simulate`, one
SGD step of every variant at q = 0.6 (loss recorded only at the end) with 1 and 2 Numba
threads, and counts it as a dense step, 4·n·B·d + 6·n·B flops, against NumPy's GEMM rate
measured in the same run with the same number of BLAS threads. It also times one
Hessian–vector product of :mod:`meanfield_dropout.curvature` on 256 training points and one
batch-sharpness draw (gradient and product on a batch of 64), in float64.

Run: ``python benchmarks/bench_mnist.py [--width 4000] [--steps 20]`` (needs the ``data``
extra for the bundled MNIST).
"""
import argparse
import sys
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from meanfield_dropout import init_particles, simulate  # noqa: E402
from meanfield_dropout.curvature import batch_sharpness, hessian_vector_product  # noqa: E402
from meanfield_dropout.data import mnist47  # noqa: E402
from timing import best_seconds, machine_header, matmul_rate  # noqa: E402

VARIANTS = ("gd", "dropout", "ram", "pn", "pn_ram")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    print(machine_header())
    data = mnist47()
    n, B, d = args.width, 64, data.inputs.shape[1]
    flops = 4 * n * B * d + 6 * n * B
    available = numba.get_num_threads()
    for dtype in ("float32", "float64"):
        X = init_particles(n, d, seed=0, dtype=dtype)
        for threads in sorted({1, min(2, available)}):
            rate = matmul_rate(np.dtype(dtype), threads, size=1500)
            numba.set_num_threads(threads)
            cells = []
            for variant in VARIANTS:
                def run(steps):
                    return simulate(data.inputs, data.targets, initial=X, master_lr=0.25,
                                    steps=steps, keep_prob=0.6, variants=(variant,),
                                    loss="logistic", batch_size=B, dtype=dtype,
                                    loss_every=steps, progress=False)
                # the loss records at the start and the end cost two forward passes on the
                # training set: time them alone (one step) and subtract
                seconds = (best_seconds(lambda: run(args.steps), 2)
                           - best_seconds(lambda: run(1), 2)) / (args.steps - 1)
                cells.append(f"{variant} {seconds * 1e3:.1f} ms "
                             f"({flops / seconds / 1e9 / rate:.0%})")
            print(f"{dtype}, {threads} thread(s), matmul {rate:.1f} GFLOP/s: "
                  + "; ".join(cells), flush=True)
    numba.set_num_threads(available)
    X = init_particles(n, d, seed=0)
    x, y = data.inputs[:256], data.targets[:256]
    hvp = best_seconds(lambda: hessian_vector_product(X, x, y, X, loss="logistic"))
    draw = best_seconds(lambda: batch_sharpness(X, data.inputs, data.targets, batch_size=B,
                                                draws=4, loss="logistic")) / 4
    print(f"float64, {available} thread(s): Hessian-vector product on 256 points "
          f"{hvp * 1e3:.0f} ms; batch-sharpness draw (B = 64) {draw * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
