"""Limits n → ∞ of exp-log sequences: exact (SymPy's Gruntz algorithm) under a time limit,
with a numeric fallback in log space.

Every expression the parser accepts (numbers, n, + − × ÷, constant powers, log, sqrt, exp) is
an exp-log function of n. By Hardy's theorem such a function is eventually of constant sign
and monotone, so its limit always exists in [−∞, ∞]; SymPy's ``limit`` (Gruntz's algorithm)
computes it exactly. SymPy has no time limit of its own and can be slow or hang on some
inputs, so every symbolic computation here runs in a short-lived worker thread with a
deadline (:func:`call_with_time_limit`); a computation past its deadline is stopped by an
asynchronous exception, which works from any calling thread (including Dask worker threads).
When SymPy does not decide (time limit, error, ``AccumBounds``, ``nan``, an unevaluated
``Limit``), :func:`numeric_limit` samples the sequence at n = 10^2, 10^4, …, 10^256 with
SymPy's arbitrary-precision ``evalf`` and analyses log|value| (so nothing overflows or
underflows); when that is not conclusive either, the limit is undetermined, with the reason.
"""
import ctypes
import math
import threading
import time
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy

from .expressions import WIDTH

__all__ = ["LIMIT_TIME_LIMIT", "NUMERIC_TIME_LIMIT", "SCALING_TIME_BUDGET", "LIMIT_WIDTHS",
           "LOG_WIDTHS", "TimeBudget", "LimitValue",
           "LimitTimeout", "call_with_time_limit", "exact_to_float", "limit_at_infinity", "eventual_sign",
           "numeric_limit", "sequence_limit", "log_sequence_limit"]

#: Seconds allowed to one SymPy computation (a limit or an eventual sign) before it is stopped.
LIMIT_TIME_LIMIT = 0.4
#: Seconds allowed to the numeric fallback of one limit.
NUMERIC_TIME_LIMIT = 0.2
#: Seconds allowed to all symbolic and numeric work on one scaling (validity checks, limit
#: constants, simplex limit), so that a classification never takes much more than a second.
SCALING_TIME_BUDGET = 0.9
#: Widths n_j = 10^(2^j), j = 1..7, for numerical limits of float sequences. On this
#: doubly-geometric grid successive differences of log(value) double for a power of n, stay
#: constant for a power of log n, and halve (or shrink faster) when the value settles.
LIMIT_WIDTHS = tuple(10.0 ** (2 ** j) for j in range(1, 8))
#: The same grid continued to 10^256 (exact integers) for the arbitrary-precision fallback.
LOG_WIDTHS = tuple(sympy.Integer(10) ** (2 ** j) for j in range(1, 9))


class TimeBudget:
    """A total time allowance shared by the computations on one scaling.

    Each computation is granted at most what is left (:meth:`grant`) and charged the wall time
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


def call_with_time_limit(function, seconds, budget=None, keep=0.0):
    """Run ``function()`` in a worker thread and wait at most ``seconds`` for it.

    With a :class:`TimeBudget`, the wait is also capped by what the budget grants (leaving
    ``keep`` seconds of it), and the time taken is charged to it.

    Returns
    -------
    (status, value)
        ``("done", result)``, ``("error", exception)`` or ``("timeout", None)``. Past the
        deadline the worker is interrupted (at its next Python bytecode) and abandoned; the
        caller does not wait for it. A computation stuck inside one C call (none of SymPy's
        limit code is) would finish that call first.
    """
    if budget is not None:
        seconds = budget.grant(seconds, keep)
        if seconds <= 0:
            return "timeout", None
    box = {}
    lock = threading.Lock()
    state = {"done": False, "interrupted": False}

    def target():
        try:
            try:
                box["value"] = function()
            except LimitTimeout:
                pass
            except BaseException as exc:           # reported to the caller, not raised here
                box["error"] = exc
            finally:
                with lock:
                    state["done"] = True
        except LimitTimeout:                       # delivered just as the work finished
            pass

    thread = threading.Thread(target=target, name="sympy-time-limit", daemon=True)
    start = time.perf_counter()
    thread.start()
    thread.join(seconds)
    if budget is not None:
        budget.spent += time.perf_counter() - start
    with lock:
        if not state["done"]:
            state["interrupted"] = True
            _interrupt(thread)                     # at most once, and only while working
            return "timeout", None
    if "error" in box:
        return "error", box["error"]
    return "done", box.get("value")


@dataclass(frozen=True)
class LimitValue:
    """One limit n → ∞ and how it was found.

    Attributes
    ----------
    exact : sympy.Expr or None
        The exact limit (a SymPy number, ``oo`` or ``-oo``) when SymPy decided it.
    approx : float or None
        Its float value (±inf allowed); ``None`` when the limit is undetermined.
    method : str
        ``"sympy"``, ``"numeric"`` (log-space fallback) or ``"undetermined"``.
    note : str
        Why SymPy did not decide (and, if undetermined, why the fallback did not either).
    """

    exact: object
    approx: float | None
    method: str
    note: str = ""

    @property
    def determined(self):
        """True when the limit is known (exactly or numerically)."""
        return self.approx is not None

    def sign(self):
        """+1, 0 or −1 for a positive, zero or negative limit; ``None`` if undetermined."""
        if self.exact is not None:
            value = self.exact
            return 0 if value.is_zero else (1 if value.is_extended_positive else -1)
        if self.approx is None:
            return None
        return (self.approx > 0) - (self.approx < 0)

    def is_infinite(self):
        """True for a limit ±∞, ``None`` if undetermined."""
        if self.exact is not None:
            return bool(self.exact.is_infinite)
        return None if self.approx is None else math.isinf(self.approx)


def _decided(value):
    """Why a SymPy limit result does not count as a decided real limit, or ``""``."""
    if isinstance(value, sympy.AccumBounds):
        return f"SymPy returned the bounds {value}"
    if isinstance(value, sympy.Limit) or value.has(sympy.Limit):
        return "SymPy returned the limit unevaluated"
    if value is sympy.nan or value is sympy.zoo or value.free_symbols:
        return f"SymPy returned {value}"
    if not (value.is_extended_real and (value.is_infinite or value.is_number)):
        return f"SymPy returned the non-real value {value}"
    return ""


def _timeout_note(what, seconds, budget):
    if budget is not None and budget.left <= (NUMERIC_TIME_LIMIT if what == "SymPy" else 0.0):
        return f"{what} stopped: the time budget of {budget.seconds:g} s for this scaling is spent"
    return f"{what} did not finish within {seconds:g} s"


def _exact_limit(expr, seconds, budget=None):
    """(exact limit or None, note) of ``expr`` as n → ∞ with SymPy, within ``seconds``."""
    status, value = call_with_time_limit(lambda: sympy.limit(expr, WIDTH, sympy.oo), seconds,
                                         budget, keep=NUMERIC_TIME_LIMIT)
    if status == "timeout":
        return None, _timeout_note("SymPy", seconds, budget)
    if status == "error":
        return None, f"SymPy failed ({type(value).__name__}: {str(value)[:80]})"
    problem = _decided(value)
    return (None, problem) if problem else (value, "")


def exact_to_float(value):
    """Float of an exact extended-real SymPy number (±inf kept; huge values become ±inf)."""
    if value is sympy.oo:
        return math.inf
    if value is sympy.S.NegativeInfinity:
        return -math.inf
    try:
        return float(value)
    except OverflowError:
        return math.inf if value.is_extended_positive else -math.inf


def limit_at_infinity(expr, *, positive=False, seconds=None, budget=None):
    """The limit of ``expr`` as n → ∞ as a :class:`LimitValue`.

    Parameters
    ----------
    expr : sympy.Expr
        An expression in :data:`~phase_diagram.expressions.WIDTH` (n, declared positive).
    positive : bool
        Whether the sequence is known to be positive for large n; the numeric fallback then
        works on log(value) and recognises limits 0 and ∞, otherwise only finite limits.
    seconds : float, optional
        Time limit of the SymPy computation (default :data:`LIMIT_TIME_LIMIT`); 0 skips it.
    budget : TimeBudget, optional
        Shared allowance that caps (and is charged for) the SymPy and numeric computations.
    """
    seconds = LIMIT_TIME_LIMIT if seconds is None else seconds
    if not expr.has(WIDTH) and expr.is_number and not _decided(expr):
        return LimitValue(expr, exact_to_float(expr), "sympy")       # a constant
    exact, note = (_exact_limit(expr, seconds, budget) if seconds > 0
                   else (None, "SymPy not tried"))
    if exact is not None:
        return LimitValue(exact, exact_to_float(exact), "sympy")
    approx, why = numeric_limit(expr, positive=positive, budget=budget)
    if approx is not None:
        return LimitValue(None, approx, "numeric", note)
    return LimitValue(None, None, "undetermined", f"{note}; {why}")


def eventual_sign(expr, *, seconds=None, budget=None):
    """The sign of ``expr`` for all large n (+1, 0 for identically zero, −1), or ``None``.

    An exp-log function has a constant sign for all large n: the sign of its limit, or, when
    the limit is 0, the sign of the limit of its inverse (±∞). Decided exactly or not at all.

    Returns
    -------
    (sign, note)
        ``sign`` is ``None`` when SymPy cannot decide; ``note`` then says why.
    """
    seconds = LIMIT_TIME_LIMIT if seconds is None else seconds
    expr = sympy.sympify(expr)
    status, known = call_with_time_limit(
        lambda: 1 if expr.is_positive else -1 if expr.is_negative else
        0 if expr.is_zero else None, seconds, budget)
    if status == "done" and known is not None:
        return known, ""
    value, note = _exact_limit(expr, seconds, budget)
    if value is None:
        return None, note
    if not value.is_zero:
        return (1 if value.is_extended_positive else -1), ""
    inverse, note = _exact_limit(1 / expr, seconds, budget)
    if inverse is sympy.oo or inverse is sympy.S.NegativeInfinity:
        return (1 if inverse is sympy.oo else -1), ""
    return None, note or f"the limit of its inverse is {inverse}, not ±oo"


# ---------------------------------------------------------------------------------------------
# Numeric fallback
# ---------------------------------------------------------------------------------------------

def _log_samples(expr, positive):
    """log(value) (``positive``) or the value at :data:`LOG_WIDTHS`; NaN where undefined."""
    out = []
    for width in LOG_WIDTHS:
        try:
            value = expr.evalf(20, subs={WIDTH: width}, maxn=1200)
            if not value.is_Float:
                value = sympy.Float(value) if value.is_zero else None
        except (ArithmeticError, ValueError, TypeError, RecursionError):
            value = None
        if value is None:
            out.append(math.nan)
        elif positive:
            mp = mpmath.mpf(value._mpf_)
            out.append(float(mpmath.log(mp)) if mp > 0 else (-math.inf if mp == 0 else math.nan))
        else:
            out.append(float(value))
    return np.array(out)


def numeric_limit(expr, *, positive=False, seconds=None, budget=None):
    """Numeric limit of ``expr`` from arbitrary-precision samples at n = 10^2 … 10^256.

    Returns
    -------
    (float or None, note)
        The limit (0 or ±inf allowed when ``positive``), or ``None`` with the reason.
    """
    seconds = NUMERIC_TIME_LIMIT if seconds is None else seconds
    status, samples = call_with_time_limit(lambda: _log_samples(expr, positive), seconds, budget)
    if status == "error":
        return None, f"the numeric fallback failed ({type(samples).__name__})"
    if status != "done":
        return None, _timeout_note("the numeric fallback", seconds, budget)
    limit = log_sequence_limit(samples) if positive else sequence_limit(samples, positive=False)
    if limit is None:
        return None, "the numeric fallback (n = 10^2 ... 10^256) does not settle"
    return limit, ""


def log_sequence_limit(logs, *, settle_ratio=0.7, trend_ratio=0.8, atol=1e-9):
    """Limit of a positive sequence from its logarithms on the grid n_j = 10^(2^j).

    The log-space core of :func:`sequence_limit` (same parameters): log-values of ±inf stand
    for values that are 0 or ∞ in floating point. Returns the limit in [0, ∞] or ``None``.
    """
    seq = np.asarray(logs, dtype=float)
    if seq.size < 4 or np.isnan(seq).any():
        return None
    if seq[-1] == -math.inf and seq[-2] == -math.inf:
        return 0.0
    if seq[-1] == math.inf and seq[-2] == math.inf:
        return math.inf
    if not np.isfinite(seq).all():
        return None
    diffs = np.diff(seq)[-3:]
    if np.all(np.abs(diffs) <= atol * max(1.0, abs(seq[-1]))):
        return float(np.exp(seq[-1]))
    if np.all(diffs > 0) or np.all(diffs < 0):
        ratios = diffs[1:] / diffs[:-1]
        if np.all(ratios >= trend_ratio):
            growing = diffs[-1] > 0
            if _extrapolates_to_zero(-seq if growing else seq):
                return math.inf if growing else 0.0
            return None
        if np.all(ratios <= settle_ratio):
            rho = ratios[-1]
            return float(np.exp(seq[-1] + diffs[-1] * rho / (1.0 - rho)))
    return None


def _extrapolates_to_zero(logs, fraction=0.25):
    """Whether a positive decreasing sequence (given by its logs) heads to 0.

    The last three values, scaled by the first of them (no underflow of the ratio test), are
    extrapolated with their geometric tail (Aitken's Δ²); the sequence heads to 0 when the
    extrapolated limit is below ``fraction`` times the last value.
    """
    x = np.exp(np.asarray(logs[-3:]) - logs[-3])
    if x[-1] == 0.0:                 # fell by more than e^700 over three samples
        return True
    dx = np.diff(x)
    rho = dx[1] / dx[0] if dx[0] else 0.0
    if not 0.0 < rho < 1.0:
        return True
    return x[-1] + dx[1] * rho / (1.0 - rho) < fraction * x[-1]


def sequence_limit(values, *, positive=True, settle_ratio=0.7, trend_ratio=0.8, atol=1e-9):
    """Numerical limit of a float sequence sampled at :data:`LIMIT_WIDTHS`, or ``None``.

    Parameters
    ----------
    values : sequence of float
        The sequence at the widths n_j = 10^(2^j) (at least 4 values).
    positive : bool
        If True the values are ≥ 0 and the analysis runs on log(value): the limit may be 0 or
        ∞ (power or log-power trends). If False the values are real and only a finite limit is
        recognised.
    settle_ratio : float
        Successive differences shrinking at least this fast (ratio ≤ settle_ratio) count as
        settling; the limit is then extrapolated with the geometric tail.
    trend_ratio : float
        Same-sign differences of log(value) with ratio ≥ trend_ratio count as a power/log-power
        trend to 0 or ∞, provided the values (their inverses for ∞) extrapolate to about 0: a
        constant plus a slowly vanishing term, c + (log n)^(−p) with small p, also has
        log-differences of ratio near 1 but extrapolates to c, and is then undetermined.
    atol : float
        Differences below ``atol`` count as already settled.

    Returns
    -------
    float or None
        The limit, or ``None`` (undetermined) when the last differences neither settle nor
        trend consistently (oscillation, NaN, slow drifts in between).
    """
    values = np.asarray(values, dtype=float)
    if values.size < 4 or np.isnan(values).any():
        return None
    if positive:
        if (values < 0).any():
            return None
        with np.errstate(divide="ignore"):
            return log_sequence_limit(np.log(values), settle_ratio=settle_ratio,
                                      trend_ratio=trend_ratio, atol=atol)
    if not np.isfinite(values).all():
        return None
    diffs = np.diff(values)[-3:]
    if np.all(np.abs(diffs) <= atol * max(1.0, abs(values[-1]))):
        return float(values[-1])
    if np.all(diffs > 0) or np.all(diffs < 0):
        ratios = diffs[1:] / diffs[:-1]
        if np.all(ratios <= settle_ratio):
            rho = ratios[-1]
            return float(values[-1] + diffs[-1] * rho / (1.0 - rho))
    return None
