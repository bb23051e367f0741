"""Independent runs on a local process pool, one Numba and one BLAS thread per worker.

Many experiments are a list of independent simulations, each seeded from its own
``SeedSequence`` child. Running them in separate processes uses every core without the
per-step thread synchronisation of a parallel kernel, and, since every result is a function
of its seed only, the numbers do not depend on the worker count or the completion order.
"""
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from ..validation import check_int
from .threads import kernel_threads, pin_process

#: Seconds between two checks of a worker's watchdog that its parent is alive.
WATCHDOG_PERIOD = 0.5


def init_worker(parent=None):
    """Process-pool initializer: a one-thread Numba pool and one BLAS thread in a freshly
    spawned worker, and a watchdog that ends the worker when its parent process dies.

    The thread limits are :func:`meanfield_dropout.runtime.threads.pin_process`.

    Parameters
    ----------
    parent : int, optional
        PID of the process that started the pool (default: the worker's parent now). When it
        is no longer the worker's parent (it died, e.g. of ``kill -9``, and the worker was
        re-parented), the worker exits at once instead of finishing its task.
    """
    pin_process()
    parent = os.getppid() if parent is None else parent
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="parent-watchdog").start()


def _as_in_a_worker(function, task):
    """``function(*task)`` in this process with one Numba and one BLAS thread, as a pool
    worker runs it.

    A worker has a one-thread Numba pool and BLAS on one thread (:func:`init_worker`);
    running a task here with the same thread counts makes the numbers independent of the
    worker count, whatever BLAS sums a task leaves unguarded.
    """
    with kernel_threads():
        return function(*task)


def _watch_parent(parent):
    """End this process as soon as ``parent`` is no longer its parent."""
    while os.getppid() == parent:
        time.sleep(WATCHDOG_PERIOD)
    os._exit(1)


def available_cores():
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:              # not on Linux
        return os.cpu_count() or 1


def check_workers(workers):
    """``workers`` as an int ≥ 1; None means :func:`available_cores`."""
    return available_cores() if workers is None else check_int(workers, "workers", low=1)


def run_unordered(function, tasks, workers, *, always_spawn=False):
    """Yield ``(index, function(*tasks[index]))`` as the tasks finish.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled by reference for the workers).
    tasks : sequence of tuple
        Positional arguments of each call; they must pickle.
    workers : int
        Worker processes. With 1, or a single task, the calls run in this process, in order,
        unless ``always_spawn``.
    always_spawn : bool
        Run every task in a worker process, so that a task which crashes its process (e.g.
        is killed) ends the pool with ``BrokenProcessPool`` here instead of this process.

    Yields
    ------
    index : int
    result : object

    Notes
    -----
    Workers are *spawned*, not forked: forking a process whose Numba threads already run
    crashes parallel kernels in the children. On the first failure the pending tasks are
    cancelled and the error is raised here. Workers exit within :data:`WATCHDOG_PERIOD`
    seconds when this process dies (:func:`init_worker`).
    """
    tasks = list(tasks)
    if not always_spawn and (workers == 1 or len(tasks) <= 1):
        for index, task in enumerate(tasks):
            yield index, _as_in_a_worker(function, task)
        return
    if not tasks:
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), initializer=init_worker,
                             initargs=(os.getpid(),),
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(function, *task): index for index, task in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
