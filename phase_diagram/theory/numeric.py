"""Numeric limits n → ∞ of sequences: the fallback when SymPy does not decide.

:func:`numeric_limit` samples a SymPy expression at n = 10^2, 10^4, …, 10^256 with SymPy's
arbitrary-precision ``evalf`` (mpmath numbers have an unbounded exponent, and the working
precision grows to resolve cancellations such as 1 − q_n with q_n = 1 − n^(−1/2)) and
analyses log|value|, so that nothing overflows or underflows. :func:`sequence_limit` does the
same analysis on float samples of Python callables (:class:`~phase_diagram.theory.scalings.
CallableScaling`). A sequence that neither settles nor trends clearly is undetermined
(``None``): these are heuristics, used only where exact limits are not available.
"""
import math

import mpmath
import numpy as np
import sympy

from .expressions import WIDTH
from .timeouts import call_with_time_limit, timeout_note

__all__ = ["NUMERIC_TIME_LIMIT", "LIMIT_WIDTHS", "LOG_WIDTHS", "numeric_limit",
           "log_sequence_limit", "sequence_limit"]

#: Seconds (CPU) allowed to the numeric fallback of one limit.
NUMERIC_TIME_LIMIT = 0.2
#: Widths n_j = 10^(2^j), j = 1..7, for numerical limits of float sequences. On this
#: doubly-geometric grid successive differences of log(value) double for a power of n, stay
#: constant for a power of log n, and halve (or shrink faster) when the value settles.
LIMIT_WIDTHS = tuple(10.0 ** (2 ** j) for j in range(1, 8))
#: The same grid continued to 10^256 (exact integers) for the arbitrary-precision fallback.
LOG_WIDTHS = tuple(sympy.Integer(10) ** (2 ** j) for j in range(1, 9))


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
        return None, timeout_note("the numeric fallback", seconds, budget)
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
