"""Memory estimates and the guard that refuses a run which would not fit, before it starts;
the warning that announces a long run with its estimated work (:func:`warn_long_run`).

Every public entry point that allocates in proportion to its arguments (snapshots of the
engine, limit clouds, W2 cost matrices) estimates the bytes it needs and calls
:func:`check_memory` first. The limit is a fraction of the memory available when the call is
made (``MemAvailable`` of ``/proc/meminfo`` on Linux), :data:`DEFAULT_FRACTION` unless the
environment variable ``MEANFIELD_DROPOUT_MEMORY_FRACTION`` (a number in (0, 1]) or
:func:`set_memory_fraction` says otherwise.
"""
import contextlib
import math
import os
import sys
import threading
import warnings

#: Fraction of the available memory a single run may ask for.
DEFAULT_FRACTION = 0.5
_ENV = "MEANFIELD_DROPOUT_MEMORY_FRACTION"
_fraction = None


class MemoryLimitError(ValueError):
    """A run would need more memory than it may use; the message gives both numbers."""


#: Estimated seconds of one core above which :func:`warn_long_run` warns: 500 s, 10^13
#: floating-point operations at :data:`NOMINAL_RATE`.
LONG_RUN_SECONDS = 500.0
#: Rate used to turn an operation count into a rough duration: 2·10^10 operations per second,
#: about what the engine's kernels reach on one core of this project's machine.
NOMINAL_RATE = 2e10


class LongRunWarning(UserWarning):
    """A run is estimated to take long; the message gives the estimate."""


#: Memory above which :func:`check_memory` warns (:class:`LargeRunWarning`) even when the
#: run fits: 1 GiB.
LARGE_RUN_BYTES = 1 << 30


class LargeRunWarning(UserWarning):
    """A run fits in memory but needs much of it; the message gives the estimate."""


def format_duration(seconds):
    """``seconds`` as a short human-readable duration (``3.2 h``)."""
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def warn_long_run(seconds, what, hint=""):
    """Warn (:class:`LongRunWarning`) if ``seconds`` exceed :data:`LONG_RUN_SECONDS`.

    Parameters
    ----------
    seconds : float
        Estimated seconds of the run on one core (a cost model's estimate, a fixed function of
        the sizes: the warning does not depend on the machine).
    what, hint : str
        What runs (``"the 255 cells of the scan"``) and how to ask for less, for the message.

    Returns
    -------
    float
        ``seconds``, for chaining.
    """
    if seconds > LONG_RUN_SECONDS:
        warnings.warn(f"{what} is a long run: about {format_duration(seconds)} of one core "
                      "(a cost model's estimate)" + (f"; {hint}" if hint else ""),
                      LongRunWarning, stacklevel=3)
    return seconds


#: Estimated seconds above which a run prints its estimate before it starts
#: (:func:`announce_cost`).
ANNOUNCE_SECONDS = 30.0


def announce_cost(seconds, what, workers=1, *, wall=None, threshold=None):
    """Print ``what``'s estimated duration on stderr before it starts, if above ``threshold``
    (nothing within :func:`announced`).

    Parameters
    ----------
    seconds : float
        Estimated seconds on one core (a cost model's estimate, not a measurement).
    what : str
        What runs, for the message.
    workers : int
        Processes sharing the work: the wall time is about ``seconds / workers``.
    wall : float, optional
        The estimated wall time when the work does not split evenly between the workers
        (default ``seconds / workers``).
    threshold : float, optional
        Estimated wall seconds above which the estimate is printed (default
        :data:`ANNOUNCE_SECONDS`; 0: always).

    Returns
    -------
    float
        ``seconds``, for chaining.
    """
    wall = seconds / max(1, workers) if wall is None else wall
    threshold = ANNOUNCE_SECONDS if threshold is None else threshold
    if wall > threshold and not getattr(_caller, "announced", False):
        print(f"{what}: estimated {format_duration(wall)}"
              + (f" on {workers} workers ({format_duration(seconds)} of one core)"
                 if workers > 1 else "") + " (a cost model's estimate, excluding compilation)",
              file=sys.stderr, flush=True)
    return seconds


# per thread: a scan's cells may run in threads of this process (Dask without processes)
_caller = threading.local()


@contextlib.contextmanager
def announced():
    """Within this context :func:`announce_cost` prints nothing in this thread: the caller has
    announced the whole run (e.g. ``reproduce``, before the simulations and scans it
    drives)."""
    before, _caller.announced = getattr(_caller, "announced", False), True
    try:
        yield
    finally:
        _caller.announced = before


def set_memory_fraction(fraction):
    """Let a run use up to ``fraction`` ∈ (0, 1] of the available memory (None: default)."""
    global _fraction
    if fraction is not None:
        fraction = _check_fraction(fraction, "fraction")
    _fraction = fraction


def memory_fraction():
    """The fraction in force: :func:`set_memory_fraction`, else the environment, else default."""
    if _fraction is not None:
        return _fraction
    if _ENV in os.environ:
        return _check_fraction(os.environ[_ENV], _ENV)
    return DEFAULT_FRACTION


def _check_fraction(value, name):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}") from None
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    return value


def available_memory():
    """Bytes of memory available now (``MemAvailable``; free pages elsewhere), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def format_bytes(nbytes):
    """``nbytes`` as a short human-readable size (``1.5 GiB``)."""
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"


def check_memory(nbytes, what, hint=""):
    """Raise :class:`MemoryLimitError` if ``nbytes`` exceed the allowed share of memory.

    Parameters
    ----------
    nbytes : int or float
        Estimated bytes the run will allocate.
    what : str
        What needs them (``"snapshots of 3 variants"``), for the message.
    hint : str
        How to ask for less, appended to the message.

    Returns
    -------
    int
        ``nbytes``, for chaining.

    Warns
    -----
    LargeRunWarning
        When the run fits but needs more than :data:`LARGE_RUN_BYTES`.
    """
    available = available_memory()
    if available is None:
        return nbytes
    allowed = memory_fraction() * available
    if nbytes > allowed:
        raise MemoryLimitError(
            f"{what} needs {format_bytes(nbytes)}, more than {memory_fraction():.0%} of the "
            f"{format_bytes(available)} available"
            + (f"; {hint}" if hint else "")
            + f" (or raise {_ENV})")
    if nbytes > LARGE_RUN_BYTES:
        warnings.warn(f"{what} needs about {format_bytes(nbytes)} "
                      f"({nbytes / available:.0%} of the {format_bytes(available)} available)",
                      LargeRunWarning, stacklevel=2)
    return nbytes
