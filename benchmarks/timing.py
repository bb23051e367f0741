"""The timers the benchmarks share: best wall time of a call, and the machine's matmul rate."""
import time

import numpy as np
from threadpoolctl import threadpool_limits


def best_seconds(run, repeats=3):
    """Best wall time of ``run()`` over ``repeats`` calls, after one warm-up call."""
    run()
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_rate(dtype=np.float64, threads=None, size=2000, repeats=3):
    """Best GEMM rate (GFLOP/s) of NumPy's BLAS on ``size``² matrices in ``dtype``, with
    ``threads`` BLAS threads (default: all)."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(dtype)
    with threadpool_limits(limits=threads, user_api="blas"):
        return 2 * size ** 3 / best_seconds(lambda: a @ a, repeats) / 1e9
