"""Thread limits of the kernels: Numba threads by problem size, BLAS on one thread.

Every public function that runs kernels, and every worker process, uses these instead of
setting thread counts itself:

* :func:`blas_single_thread` — BLAS on one thread (Numba's own threads run the blocks);
* :func:`kernel_threads` — that, plus a Numba thread count chosen by :func:`threads_for`
  (or one thread), restored on exit;
* :func:`pin_process` — one Numba and one BLAS thread for the rest of a worker process's life.

Results do not depend on the Numba thread count; BLAS sums do, which is why BLAS stays on one
thread everywhere and a task gives the same numbers in this process and in any worker.
"""
import contextlib
import os

import numba
import scipy.linalg.cython_blas  # noqa: F401  the BLAS of Numba's np.dot, loaded before listing
from threadpoolctl import ThreadpoolController

#: Work items (neurons × batch entries) per Numba thread of a kernel run (see
#: :func:`threads_for`).
CELLS_PER_THREAD = 125_000
#: A run whose cost model estimates fewer one-core seconds than this runs the serial twins of
#: its kernels (:func:`meanfield_dropout.kernels.twins.serial`), whatever its thread count:
#: compiling the parallel twins of the engine costs about 7 s of CPU more on an empty cache,
#: and two threads save at most half of such a run (1.4x faster at n = 500, m = 500 on this
#: project's 2-core machine). The numbers are the same either way.
PARALLEL_SECONDS = 10.0

_CONTROLLER = []
#: The process-wide BLAS limit of a pinned worker (kept so that it stays in force).
_PINNED = []


def _controller():
    """The threadpoolctl controller of the BLAS libraries loaded by NumPy and SciPy (made
    once: listing the libraries costs about a millisecond, limiting them 10 µs)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def blas_single_thread():
    """Context that keeps BLAS to one thread while kernels run their own parallel blocks.

    Nested BLAS threads inside Numba's threads oversubscribe the cores (a many-fold
    slowdown seen on 2 cores); each block's product is too small to gain from them.
    """
    return _controller().limit(limits=1, user_api="blas")


def threads_for(cells, available):
    """Numba threads for a step over ``cells`` = neurons × batch entries.

    One thread per :data:`CELLS_PER_THREAD` cells, at most ``available``
    (``numba.get_num_threads()``, which a caller lowers with ``numba.set_num_threads``).
    Below that a step takes well under a millisecond and launching a parallel region costs
    more than a second thread gains. Measured on the idle 2-core machine (m = 500, GD +
    dropout): one thread is as fast as two at n = 200 and 2 threads are 1.4× faster at
    n = 500 and 1.6× at n = 5000. Results do not depend on the thread count.
    """
    return max(1, min(available, cells // CELLS_PER_THREAD))


@contextlib.contextmanager
def kernel_threads(cells=None):
    """Context for running kernels: BLAS on one thread and the Numba thread count of a
    problem of ``cells`` work items (:func:`threads_for`), or one Numba thread if ``cells``
    is None; the previous Numba thread count is restored on exit.
    """
    threads = numba.get_num_threads()
    numba.set_num_threads(1 if cells is None else threads_for(cells, threads))
    try:
        with blas_single_thread():
            yield
    finally:
        numba.set_num_threads(threads)


def pin_process():
    """One Numba and one BLAS thread for the rest of this process (a freshly spawned worker).

    Numba is imported but has started no threads in a spawned process, so
    ``NUMBA_NUM_THREADS=1`` still takes effect after a configuration reload; the BLAS limit
    stays in force until the process ends.
    """
    os.environ["NUMBA_NUM_THREADS"] = "1"
    numba.core.config.reload_config()
    numba.set_num_threads(1)
    _PINNED.append(_controller().limit(limits=1, user_api="blas"))
