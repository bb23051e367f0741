"""Cheap, deterministic cell functions for the phase-diagram scan tests.

``power_cell`` returns, for each candidate limit, a seeded noisy distance-vs-time array that
decays like n^(-1/2) for the first listed limit and stays O(1) for the others. Environment:

* ``PHASE_TEST_MARKERS``: directory where every computed cell appends a line to
  ``<seed>.count`` (so tests can count how often each cell ran);
* ``PHASE_TEST_KILL_AT=K``: the cell computed when K cells have markers kills its own process
  (SIGKILL) once, before writing its marker (a flag file makes it happen only once);
* ``PHASE_TEST_SLEEP``: seconds to sleep in each cell.
"""
import os
import signal
import time
from pathlib import Path

import numpy as np


def power_cell(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
               **options):
    time.sleep(float(os.environ.get("PHASE_TEST_SLEEP", "0")))
    markers = os.environ.get("PHASE_TEST_MARKERS")
    kill_at = os.environ.get("PHASE_TEST_KILL_AT")
    if markers and kill_at:
        flag = Path(markers) / "killed.flag"
        if len(list(Path(markers).glob("*.count"))) == int(kill_at) and not flag.exists():
            flag.touch()
            os.kill(os.getpid(), signal.SIGKILL)
    rng = np.random.default_rng(seed)
    times = np.linspace(0.0, horizon, 5)
    out = {}
    for i, limit in enumerate(limits):
        decay = width ** -0.5 if i == 0 else 1.0
        out[limit] = times * decay * (1.0 + 0.1 * rng.random(times.size)) * (1 + master_lr)
    if markers:
        with open(Path(markers) / f"{seed}.count", "a") as handle:
            handle.write("1\n")
    return {"distances": out}


def numba_cell(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
               **options):
    """Compiles two fresh Numba functions (a parallel one first) and reports the thread count.

    A compilation reloads Numba's configuration, which fails if the worker changed
    NUMBA_NUM_THREADS after Numba started its threads.
    """
    import numba

    @numba.njit(parallel=True)
    def total(x):
        acc = 0.0
        for i in numba.prange(x.size):
            acc += x[i]
        return acc

    value = total(np.full(width, master_lr))
    scale = numba.njit(lambda x: 2.0 * x)(value)
    return {limit: [scale, float(numba.get_num_threads()), float(numba.config.NUMBA_NUM_THREADS)]
            for limit in limits}


def slow_cell(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
              **options):
    """The first limit decays like n^-1/2 from 0.25 at n = 16, the others stay at 0.2 (10%
    noise): within a factor 2 up to n ~ 100, clearly apart from n = 256 on."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, limit in enumerate(limits):
        level = (width / 16) ** -0.5 * 0.25 if i == 0 else 0.2
        out[limit] = np.full(3, level) * np.exp(0.1 * rng.standard_normal(3))
    return {"distances": out}


def diverging_cell(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
                   **options):
    """``power_cell``, except that runs with master_lr > ``options["blow_up_above"]`` or
    < ``options["blow_up_below"]`` diverge (at step 7) and, with ``options["nan"]``, the
    distances of every cell are NaN."""
    from meanfield_dropout.engine import DivergenceError

    if not options.get("blow_up_below", 0.0) <= master_lr <= options.get("blow_up_above",
                                                                          float("inf")):
        raise DivergenceError(7, "dropout", f"width {width}")
    out = power_cell(width, master_lr, keep_prob, limits, alpha=alpha, beta=beta, tau=tau,
                     horizon=horizon, seed=seed)
    if options.get("nan"):
        out["distances"] = {limit: [0.0, float("nan")] for limit in limits}
    return out


def noisy_cell(width, master_lr, keep_prob, limits, *, alpha, beta, tau, horizon, seed,
               **options):
    """The first limit at 0.01 (n/16)^(-1/2), the others at 1 (always far), each times
    exp(0.5 z) with z standard normal: a slope whose interval needs about a dozen repeats over
    the widths 16 and 64 to fall clearly below -0.15."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, limit in enumerate(limits):
        level = 0.01 * (width / 16) ** -0.5 if i == 0 else 1.0
        out[limit] = np.full(3, level * np.exp(0.5 * rng.standard_normal()))
    return {"distances": out}
