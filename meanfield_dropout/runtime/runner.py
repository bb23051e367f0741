"""Independent tasks on a local process pool or on ``dask.distributed``: the one runner.

Many experiments are a list of independent tasks (scan, map and MNIST cells, locate's runs),
each seeded from its own identity. :func:`run_unordered` runs them in separate processes, one
Numba and one BLAS thread each, which uses every core without the per-step thread
synchronisation of a parallel kernel; since every result is a function of its task only, the
numbers do not depend on the worker count, the completion order or the backend.

Backends: the local process pool (``dask=None``), a ``dask.distributed.LocalCluster``
(``dask="local"``) or any scheduler address. A scheduler that does not answer within
``dask_timeout`` seconds (default :data:`DASK_TIMEOUT`) is a one-line ``ValueError``.

Interrupts: workers start with SIGINT ignored; on Ctrl-C (or any error) in the calling
process the pending tasks are cancelled, the running ones are stopped (pool workers are
terminated, Dask futures cancelled) and the exception is raised again, within a second or
two.
"""
import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from tqdm.auto import tqdm

from ..validation import check_int, check_positive
from .memory import announce_cost
from .threads import kernel_threads, pin_process

#: Seconds between two checks of a worker's watchdog that its parent is alive.
WATCHDOG_PERIOD = 0.5

#: Default seconds a Dask scheduler has to accept a connection and answer its handshake.
DASK_TIMEOUT = 10.0

#: Seconds to wait for terminated pool workers to exit.
_STOP_WAIT = 5.0


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run, raised once its workers are stopped; the message says what the
    run kept (e.g. "interrupted; 5 of 12 cells kept in DIR, rerun to resume")."""


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
    # tqdm's default lock is a multiprocessing one, under spawn a named semaphore that a
    # terminated worker would leave to the resource tracker (a "leaked semaphore" warning
    # after Ctrl-C); a worker's bars need only a thread lock.
    tqdm.set_lock(threading.RLock())
    parent = os.getppid() if parent is None else parent
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="parent-watchdog").start()


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while worker processes are started, so that they start with it ignored.

    Ctrl-C in a terminal reaches the whole process group; a worker leaves it to this process,
    which stops the workers (:func:`run_unordered`), so that none prints a traceback of its
    own, even while it is still importing. An ignored signal stays ignored across ``exec``
    and Python keeps it so. Outside the main thread (where signal handlers cannot be set)
    nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _as_in_a_worker(function, *task):
    """``function(*task)`` with one Numba and one BLAS thread, as a pool worker runs it.

    A pool worker has a one-thread Numba pool and BLAS on one thread (:func:`init_worker`);
    running a task in this process or on a Dask worker with the same thread counts makes the
    numbers independent of the worker count and the backend, whatever BLAS sums a task
    leaves unguarded.
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


def spread_seconds(task_seconds, workers=None):
    """(seconds of one core, wall seconds, processes used) of independent tasks of estimated
    ``task_seconds`` on ``workers`` processes (default one per core): the tasks go longest
    first, each to the worker that is free first; the wall time is when the last one ends."""
    tasks = sorted(task_seconds, reverse=True)
    ends = [0.0] * min(check_workers(workers), max(1, len(tasks)))
    for seconds in tasks:
        ends[ends.index(min(ends))] += seconds
    return sum(tasks), max(ends), len(ends)


def announce_tasks(task_seconds, what, workers=None, *, threshold=None):
    """Print the estimate of independent tasks spread over ``workers`` processes
    (:func:`spread_seconds`) on stderr when its wall time exceeds ``threshold``
    (:func:`~meanfield_dropout.runtime.memory.announce_cost`).

    Returns
    -------
    tuple
        :func:`spread_seconds`.
    """
    estimate = spread_seconds(task_seconds, workers)
    seconds, wall, processes = estimate
    announce_cost(seconds, what, processes, wall=wall, threshold=threshold)
    return estimate


def check_backend(dask, dask_timeout):
    """Validate the backend options of :func:`run_unordered` (before any work starts).

    Returns
    -------
    dask : str or None
    dask_timeout : float
        :data:`DASK_TIMEOUT` when None.
    """
    if dask is not None and (not isinstance(dask, str) or not dask.strip()):
        raise ValueError(f'dask must be a scheduler address (e.g. "tcp://host:8786") or '
                         f'"local", got {dask!r}')
    timeout = DASK_TIMEOUT if dask_timeout is None else check_positive(dask_timeout,
                                                                        "dask_timeout")
    return dask, timeout


def run_unordered(function, tasks, workers, *, dask=None, dask_timeout=None,
                  always_spawn=False):
    """Yield ``(index, function(*tasks[index]))`` as the tasks finish.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled by reference for the workers).
    tasks : sequence of tuple
        Positional arguments of each call; they must pickle.
    workers : int
        Worker processes of the local pool, or of the ``LocalCluster`` with
        ``dask="local"`` (ignored for a scheduler address: the cluster decides). With 1, or a
        single task, and no Dask, the calls run in this process, in order, unless
        ``always_spawn``.
    dask : str, optional
        None: the local process pool; ``"local"``: a ``dask.distributed.LocalCluster`` of
        ``workers`` single-threaded processes; anything else: a scheduler address.
    dask_timeout : float, optional
        Seconds the scheduler has to answer (default :data:`DASK_TIMEOUT`).
    always_spawn : bool
        Run every task in a worker process, so that a task which crashes its process (e.g.
        is killed) ends the pool with ``BrokenProcessPool`` here instead of this process.

    Yields
    ------
    index : int
    result : object

    Raises
    ------
    ValueError
        The scheduler did not answer within ``dask_timeout`` seconds (one line).
    RuntimeError
        ``dask`` is given but ``dask.distributed`` is not installed.

    Notes
    -----
    Pool workers are *spawned*, not forked: forking a process whose Numba threads already
    run crashes parallel kernels in the children. On the first failure, on Ctrl-C, or when
    the caller stops iterating, the pending tasks are cancelled, the running ones stopped and
    the error raised here. Workers exit within :data:`WATCHDOG_PERIOD` seconds when this
    process dies (:func:`init_worker`).
    """
    dask, dask_timeout = check_backend(dask, dask_timeout)
    tasks = list(tasks)
    if dask is not None:
        yield from _dask_unordered(function, tasks, dask, workers, dask_timeout)
    elif not always_spawn and (workers == 1 or len(tasks) <= 1):
        for index, task in enumerate(tasks):
            yield index, _as_in_a_worker(function, *task)
    elif tasks:
        yield from _pool_unordered(function, tasks, workers)


def map_tasks(function, tasks, workers=None, *, what, estimate=None, progress=True, bar=None,
              unit="task", weights=None):
    """``[function(*task) for task in tasks]`` on ``workers`` processes (:func:`run_unordered`),
    with the run's estimate and a progress bar: an experiment's driver loop.

    Parameters
    ----------
    function, tasks
        As :func:`run_unordered`.
    workers : int, optional
        Worker processes (default: one per available core, :func:`available_cores`).
    what : str
        The run's name, in the estimate and on the bar.
    estimate : callable, optional
        Returns the estimated seconds of one core of each task; with ``progress``, their
        spread over the workers is printed first when above
        :data:`~meanfield_dropout.runtime.memory.ANNOUNCE_SECONDS` (:func:`announce_tasks`).
    progress : bool
        Print the estimate and show the bar.
    bar : bool, optional
        Show the bar (default ``progress``); False where the tasks show bars of their own.
    unit : str
        The bar's unit.
    weights : sequence of float, optional
        The bar's advance per task (default 1 each).

    Returns
    -------
    list
        The results, in the order of ``tasks`` whatever the completion order; they do not
        depend on the worker count.
    """
    tasks = list(tasks)
    workers = check_workers(workers)
    if progress and estimate is not None:
        announce_tasks(estimate(), what, workers)
    weights = [1] * len(tasks) if weights is None else list(weights)
    results = [None] * len(tasks)
    with tqdm(total=sum(weights), unit=unit, desc=what,
              disable=not (progress if bar is None else bar)) as progress_bar:
        for index, result in run_unordered(function, tasks, workers):
            results[index] = result
            progress_bar.update(weights[index])
    return results


def _pool_unordered(function, tasks, workers):
    """:func:`run_unordered` on a local pool of spawned processes."""
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), initializer=init_worker,
                               initargs=(os.getpid(),),
                               mp_context=multiprocessing.get_context("spawn"))
    try:
        with _sigint_ignored():             # the pool starts its workers as tasks arrive
            futures = {pool.submit(function, *task): index for index, task in enumerate(tasks)}
        for future in as_completed(futures):
            yield futures[future], future.result()
    except BaseException:
        _stop(pool)
        pool = None                 # the traceback keeps this frame, not the pool's queues
        raise
    pool.shutdown()


def _stop(pool):
    """Cancel the pending tasks of ``pool``, terminate its workers (running tasks too) and
    wait for its manager thread, which closes the pool's queues and its wake-up pipe. The
    thread is joined here: after ``shutdown(wait=False)`` the pool no longer holds it, and if
    it were still closing the pipe at exit, the interpreter's own wake-up call could write to
    the closed pipe and print an ``OSError`` traceback after the interrupt's one line."""
    processes = list((pool._processes or {}).values())
    manager = pool._executor_manager_thread
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(_STOP_WAIT)
    if manager is not None:
        manager.join()


def _dask_unordered(function, tasks, address, workers, timeout):
    """:func:`run_unordered` on ``dask.distributed``."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed as dask_as_completed
    except ImportError:
        raise RuntimeError("dask.distributed is not installed: pip install -e .[distributed]") \
            from None
    cluster = None
    if address == "local":
        with _sigint_ignored():
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        address = cluster.scheduler_address
    try:
        _check_scheduler(address, timeout)
        try:
            client = Client(address, timeout=timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise ValueError(f"dask: cannot connect to the scheduler {address!r}: {exc}") \
                from None
        try:
            futures = {client.submit(_as_in_a_worker, function, *task, pure=False): index
                       for index, task in enumerate(tasks)}
            try:
                for future in dask_as_completed(futures):
                    yield futures[future], future.result()
            except BaseException:
                client.cancel(list(futures))
                raise
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _check_scheduler(address, timeout):
    """Connect to the scheduler ``address`` and complete its handshake within ``timeout``
    seconds, or raise a one-line ValueError.

    ``distributed`` bounds the connection by its timeout but not the handshake that follows:
    a server that accepts and never answers would hold a ``Client`` for ever. The check runs
    on a daemon thread of its own (an event loop may already run in this one).
    """
    from distributed.comm import connect

    async def handshake():
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    outcome = []

    def attempt():
        try:
            asyncio.run(handshake())
            outcome.append(None)
        except BaseException as exc:        # reported to the calling thread
            outcome.append(exc)

    thread = threading.Thread(target=attempt, daemon=True, name="dask-scheduler-check")
    thread.start()
    thread.join(timeout + 1.0)
    error = outcome[0] if outcome else asyncio.TimeoutError()
    if error is None:
        return
    reason = (f"no answer within {timeout:g} s" if isinstance(error, asyncio.TimeoutError)
              else str(error).splitlines()[0] if str(error) else type(error).__name__)
    raise ValueError(f"dask: cannot connect to the scheduler {address!r}: {reason} "
                     f"(dask_timeout, --dask-timeout)")
