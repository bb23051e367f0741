"""Cost of one gradient sweep of each limit, as a ratio to one engine ``gd`` step.

On the paper's teacher–student data (d = 20, m = 500, tanh) with N particles, times in the
same run, interleaved repeat by repeat (so load from other processes hits both alike), and
keeps the best of the repeats:

* one engine ``gd`` step (the kernel ``variants._run_chunk``, mean-field scale);
* one sweep of each limit: half a Heun step for ``wgf`` / ``penalized-wgf`` (one drift
  evaluation; kernel ``kernels.limit_steps._heun``), N rings of the superposed clock for ``jump-poisson`` /
  ``critical`` (kernel ``kernels.limit_steps._jump_events``), one ``ram`` step for ``jump-bernoulli``.

Every kernel runs with the thread count the public functions choose (``threads_for``), and
once more with one Numba thread, since a ring of a jump limit is sequential: it moves the
predictor that the next ring reads. The machine's float64 matrix-multiply rate is printed as
context.

Run: ``python benchmarks/bench_limits.py [--particles 4000] [--repeats 7]``.
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="bench-numba-"))
import numba  # noqa: E402
import numpy as np  # noqa: E402

from meanfield_dropout import teacher_student  # noqa: E402
from meanfield_dropout.kernels.blocks import make_workspace  # noqa: E402
from meanfield_dropout.kernels.core import _predict  # noqa: E402
from meanfield_dropout.kernels.variants import (MASKS, Chunk, Data, Losses, Rule,  # noqa: E402
                                                _run_chunk)
from meanfield_dropout.kernels.limit_steps import (RingState, Rings, _heun,  # noqa: E402
                                                   _jump_events)
from meanfield_dropout.network import init_particles, network_data  # noqa: E402
from meanfield_dropout.runtime.threads import blas_single_thread, threads_for  # noqa: E402
from meanfield_dropout.kernels.rows import _all_features  # noqa: E402
from timing import machine_header, matmul_rate  # noqa: E402


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Problem:
    """Data, particles and one timing function per dynamics; each returns seconds per sweep."""

    def __init__(self, particles, steps):
        data = teacher_student()
        self.data = network_data(data.inputs, data.targets, activation="tanh")
        self.Z = data.inputs
        self.Zt = np.ascontiguousarray(data.inputs.T)
        self.y = data.targets[None, :]
        self.X = init_particles(particles, self.Z.shape[1], seed=1)
        self.n, self.steps = particles, steps
        self.value, self.deriv = np.empty((2, particles, self.Zt.shape[1]))
        self.features = _all_features(self.X, self.data, self.value, self.deriv)
        rng = np.random.default_rng(2)
        self.who = rng.integers(0, particles, size=particles)
        self.counts = rng.poisson(1.0, size=particles)
        self.partners = rng.integers(0, particles, size=int(self.counts.sum()))
        self.work = make_workspace(particles, 1, self.Z.shape[1], self.Z.shape[0], np.float64)

    def engine(self, variant="gd", keep=1.0):
        rule = Rule(*MASKS[variant], keep, 1e-3, 1.0 / self.n, 0.0, np.inf, np.inf, True)
        d = self.Z.shape[1]
        data = Data(self.data, self.data._replace(inputs=np.empty((0, d)),
                                                  inputs_t=np.empty((d, 0)),
                                                  targets=np.empty((1, 0))))
        masks = np.random.default_rng(3).random((self.steps, self.n)) < keep
        args = (rule, data, Chunk(masks, masks[:0], np.empty((self.steps, 0), np.int64),
                                  np.zeros(self.steps, bool)),
                Losses(np.zeros(self.steps), np.zeros(self.steps)), 0,
                make_workspace(self.n, 1, self.Z.shape[1], self.Z.shape[0], np.float64))
        X = self.X.copy()
        return _timed(lambda: _run_chunk(X, *args)) / self.steps

    def flow(self, beta):
        X = self.X.copy()
        return _timed(lambda: _heun(X, self.data, beta, 1e-3, self.steps, (np.inf, np.inf),
                                    self.work)) / (2 * self.steps)

    def rings(self, beta):
        X, features = self.X.copy(), self.features.copy()
        value, deriv = self.value.copy(), self.deriv.copy()
        f = _predict(X, self.data, 1.0 / self.n)
        counts = self.counts if beta > 0 else np.zeros(0, np.int64)
        partners = self.partners if beta > 0 else np.zeros(0, np.int64)
        jumps = np.zeros(self.n, np.int64)
        return _timed(lambda: _jump_events(X, RingState(value, deriv, features, f), self.data,
                                           0.5, beta, Rings(self.who, counts, partners),
                                           (np.inf, np.inf), jumps))


def measure(problem, repeats, threads):
    """Best seconds per sweep of every dynamics, interleaved over ``repeats`` rounds."""
    tasks = {"engine gd": problem.engine, "wgf": lambda: problem.flow(0.0),
             "penalized-wgf": lambda: problem.flow(1.0),
             "jump-poisson": lambda: problem.rings(0.0),
             "jump-bernoulli": lambda: problem.engine("ram", 0.5),
             "critical": lambda: problem.rings(1.0)}
    best = {name: np.inf for name in tasks}
    saved = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        with blas_single_thread():
            for fn in tasks.values():          # compile and warm up
                fn()
            for _ in range(repeats):
                for name, fn in tasks.items():
                    best[name] = min(best[name], fn())
    finally:
        numba.set_num_threads(saved)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=4, help="engine/Heun steps per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    problem = Problem(args.particles, args.steps)
    m = problem.Z.shape[0]
    available = numba.get_num_threads()
    chosen = threads_for(args.particles * m, available)
    print(machine_header())
    print(f"N = {args.particles}, d = {problem.Z.shape[1]}, m = {m}, tanh; float64 matmul "
          f"{matmul_rate():.1f} GFLOP/s; numba threads available {available}; "
          f"load average {os.getloadavg()[0]:.2f}")
    runs = {chosen: measure(problem, args.repeats, chosen)}
    if chosen != 1:
        runs[1] = measure(problem, args.repeats, 1)
    print(f"{'dynamics':>15} " + " ".join(f"{f'{t} thr ms':>9} {'ratio':>6}" for t in runs))
    for name in runs[chosen]:
        cells = [f"{run[name] * 1e3:9.2f} {run[name] / run['engine gd']:6.2f}"
                 for run in runs.values()]
        print(f"{name:>15} " + " ".join(cells))
    print(f"(per sweep: one engine step, half a Heun step, or N = {args.particles} rings; "
          f"ratio = to the engine gd step with the same threads; "
          f"load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
