"""Time limits for computations that may not finish (SymPy has none of its own).

:func:`call_with_time_limit` runs a function in a short-lived worker thread and stops it, with
an asynchronous exception (CPython's ``PyThreadState_SetAsyncExc``), once it has used its
allowance of CPU time; this works from any calling thread, including Dask worker threads,
unlike ``signal.alarm`` (main thread only), and costs a fraction of a millisecond, unlike a
subprocess. The limit is on CPU time rather than wall time so that results do not depend on
how busy the machine is. A :class:`TimeBudget` shares one allowance between all the
computations on one scaling.
"""
import ctypes
import threading
import time

__all__ = ["SCALING_TIME_BUDGET", "MAX_WALL_FACTOR", "TimeBudget", "LimitTimeout",
           "call_with_time_limit", "timeout_note"]

#: Seconds (of CPU time) allowed to all symbolic and numeric work on one scaling (validity
#: checks, limit constants, simplex limit), so that a classification stays under a second.
SCALING_TIME_BUDGET = 0.9
#: Wall-time cap of a time-limited computation, as a multiple of its CPU-time limit.
MAX_WALL_FACTOR = 5


class TimeBudget:
    """A total (CPU) time allowance shared by the computations on one scaling.

    Each computation is granted at most what is left (:meth:`grant`) and charged the CPU time
    it took (:func:`call_with_time_limit` does both).

    Parameters
    ----------
    seconds : float
        The allowance (default :data:`SCALING_TIME_BUDGET`).
    """

    def __init__(self, seconds=None):
        self.seconds = SCALING_TIME_BUDGET if seconds is None else float(seconds)
        self.spent = 0.0

    @property
    def left(self):
        """Seconds not yet spent."""
        return max(0.0, self.seconds - self.spent)

    def grant(self, seconds, keep=0.0):
        """At most ``seconds``, leaving ``keep`` seconds of the allowance for later."""
        return max(0.0, min(seconds, self.left - keep))


class LimitTimeout(BaseException):
    """Raised inside a worker thread to stop a computation past its deadline.

    A ``BaseException`` so that SymPy's ``except Exception`` clauses do not swallow it.
    """


def _interrupt(thread):
    """Raise :class:`LimitTimeout` asynchronously in ``thread`` (CPython's SetAsyncExc)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                               ctypes.py_object(LimitTimeout))


def _thread_cpu_clock(thread):
    """A clock measuring ``thread``'s CPU time, or ``None`` where the platform has none."""
    try:
        return time.pthread_getcpuclockid(thread.ident)
    except (AttributeError, OSError):
        return None


def call_with_time_limit(function, seconds, budget=None, keep=0.0):
    """Run ``function()`` in a worker thread and let it use at most ``seconds`` of CPU time.

    The limit is on the worker's CPU time (where the platform measures it, else wall time),
    so that results do not depend on how busy the machine is; the wall time is capped at
    :data:`MAX_WALL_FACTOR` times the limit all the same. With a :class:`TimeBudget`, the limit
    is also capped by what the budget grants (leaving ``keep`` seconds of it), and the CPU
    time taken is charged to it.

    Returns
    -------
    (status, value)
        ``("done", result)``, ``("error", exception)`` or ``("timeout", None)``. Past the
        limit the worker is interrupted (at its next Python bytecode) and abandoned; the
        caller does not wait for it. A computation stuck inside one C call (none of SymPy's
        limit code is) would finish that call first.
    """
    if budget is not None:
        seconds = budget.grant(seconds, keep)
        if seconds <= 0:
            return "timeout", None
    box = {}
    lock = threading.Lock()
    state = {"done": False}

    def target():
        try:
            try:
                box["value"] = function()
            except LimitTimeout:
                pass
            except BaseException as exc:           # reported to the caller, not raised here
                box["error"] = exc
            finally:
                box["cpu"] = time.thread_time()
                with lock:
                    state["done"] = True
        except LimitTimeout:                       # delivered just as the work finished
            pass

    thread = threading.Thread(target=target, name="sympy-time-limit", daemon=True)
    start = time.perf_counter()
    thread.start()
    clock = _thread_cpu_clock(thread)
    used = 0.0
    while True:
        thread.join(max(seconds - used, 1e-3))
        wall = time.perf_counter() - start
        if not thread.is_alive():
            break
        try:
            used = wall if clock is None else time.clock_gettime(clock)
        except OSError:                            # the thread has just ended
            continue
        if used >= seconds or wall >= MAX_WALL_FACTOR * seconds:
            break
    with lock:
        finished = state["done"]
        if not finished:
            _interrupt(thread)                     # once, and only while it is working
    if budget is not None:
        budget.spent += box["cpu"] if finished else used
    if not finished:
        return "timeout", None
    if "error" in box:
        return "error", box["error"]
    return "done", box.get("value")


def timeout_note(what, seconds, budget, reserve=0.0):
    """Why ``what`` stopped: its own limit of ``seconds``, or the budget (down to ``reserve``)."""
    if budget is not None and budget.left <= reserve:
        return f"{what} stopped: the time budget of {budget.seconds:g} s for this scaling is spent"
    return f"{what} did not finish within {seconds:g} s of CPU time"
