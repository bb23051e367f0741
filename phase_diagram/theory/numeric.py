"""Numeric limits n → ∞ of sequences: the fallback when SymPy does not decide.

:func:`numeric_limit` samples a SymPy expression at n = 10^2, 10^4, …, 10^256 with SymPy's
arbitrary-precision ``evalf`` (mpmath numbers have an unbounded exponent, and the working
precision grows to resolve cancellations such as 1 − q_n with q_n = 1 − n^(−1/2)) and
analyses log|value|, so that nothing overflows or underflows. :func:`sequence_limit` does the
same analysis on float samples of Python callables (:class:`~phase_diagram.theory.scalings.
CallableScaling`). Every numeric limit comes with its uncertainty, and a sequence that neither
settles nor trends clearly is undetermined (``None``): these are heuristics, used only where
exact limits are not available.
"""
import math

import mpmath
import numpy as np
import sympy

from .expressions import WIDTH
from .budgets import NUMERIC_STEPS, budget_note, call_with_budget

__all__ = ["LIMIT_WIDTHS", "LOG_WIDTHS", "numeric_limit", "log_sequence_estimate",
           "log_sequence_limit", "sequence_estimate", "sequence_limit"]

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


def numeric_limit(expr, *, positive=False, steps=None, budget=None):
    """Numeric limit of ``expr`` from arbitrary-precision samples at n = 10^2 … 10^256.

    Returns
    -------
    (float or None, float or None, note)
        The limit (0 or ±inf allowed when ``positive``) and its uncertainty (see
        :func:`sequence_estimate`), or ``None, None`` with the reason.
    """
    steps = NUMERIC_STEPS if steps is None else steps
    status, samples = call_with_budget(lambda: _log_samples(expr, positive), steps, budget)
    if status == "error":
        return None, None, f"the numeric fallback failed ({type(samples).__name__})"
    if status != "done":
        return None, None, budget_note("the numeric fallback", steps, budget)
    limit, error = (log_sequence_estimate(samples) if positive
                    else sequence_estimate(samples, positive=False))
    if limit is None:
        return None, None, "the numeric fallback (n = 10^2 ... 10^256) does not settle"
    return limit, error, ""


def _settled(seq, diffs, settle_ratio, atol):
    """(extrapolated last value, size of the extrapolation) of a settling sequence, or None.

    The geometric tail of the last differences extrapolates the sequence; its uncertainty is
    the larger of that tail and the last difference (the distance the sequence still moved).
    """
    if np.all(np.abs(diffs) <= atol * max(1.0, abs(seq[-1]))):
        return float(seq[-1]), float(np.abs(diffs).max())
    if np.all(diffs > 0) or np.all(diffs < 0):
        ratios = diffs[1:] / diffs[:-1]
        if np.all(ratios <= settle_ratio):
            rho = ratios[-1]
            tail = diffs[-1] * rho / (1.0 - rho)
            return float(seq[-1] + tail), float(max(abs(tail), abs(diffs[-1])))
    return None


def log_sequence_estimate(logs, *, settle_ratio=0.7, trend_ratio=0.8, atol=1e-9):
    """Limit of a positive sequence from its logarithms on the grid n_j = 10^(2^j), with its
    uncertainty.

    The log-space core of :func:`sequence_estimate` (same parameters): log-values of ±inf
    stand for values that are 0 or ∞ in floating point.

    Returns
    -------
    (float or None, float or None)
        The limit in [0, ∞] and its absolute uncertainty (0 for a trend to 0 or ∞), or
        ``(None, None)``.
    """
    seq = np.asarray(logs, dtype=float)
    if seq.size < 4 or np.isnan(seq).any():
        return None, None
    if seq[-1] == -math.inf and seq[-2] == -math.inf:
        return 0.0, 0.0
    if seq[-1] == math.inf and seq[-2] == math.inf:
        return math.inf, 0.0
    if not np.isfinite(seq).all():
        return None, None
    diffs = np.diff(seq)[-3:]
    settled = _settled(seq, diffs, settle_ratio, atol)
    if settled is not None:
        log_limit, log_error = settled
        limit = math.exp(log_limit)
        # plus the rounding of exp(log value) in floats
        return limit, limit * (math.expm1(log_error) + 4 * np.finfo(float).eps)
    if np.all(diffs > 0) or np.all(diffs < 0):
        ratios = diffs[1:] / diffs[:-1]
        if np.all(ratios >= trend_ratio):
            growing = diffs[-1] > 0
            if _extrapolates_to_zero(-seq if growing else seq):
                return (math.inf if growing else 0.0), 0.0
    return None, None


def log_sequence_limit(logs, **options):
    """The limit of :func:`log_sequence_estimate` alone (``None`` when undetermined)."""
    return log_sequence_estimate(logs, **options)[0]


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


def sequence_estimate(values, *, positive=True, settle_ratio=0.7, trend_ratio=0.8, atol=1e-9):
    """Numerical limit of a float sequence sampled at :data:`LIMIT_WIDTHS`, with its uncertainty.

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
    (float or None, float or None)
        The limit and its uncertainty: the larger of the extrapolation past the last sample and
        the last difference (a heuristic: a term such as log log n / log n moves too slowly on
        this grid to be seen, so the uncertainty, not the estimate, is what to read), 0 for a
        trend to 0 or ∞; ``(None, None)`` (undetermined) when the last differences neither
        settle nor trend consistently (oscillation, NaN, slow drifts in between).
    """
    values = np.asarray(values, dtype=float)
    if values.size < 4 or np.isnan(values).any():
        return None, None
    if positive:
        if (values < 0).any():
            return None, None
        with np.errstate(divide="ignore"):
            return log_sequence_estimate(np.log(values), settle_ratio=settle_ratio,
                                         trend_ratio=trend_ratio, atol=atol)
    if not np.isfinite(values).all():
        return None, None
    settled = _settled(values, np.diff(values)[-3:], settle_ratio, atol)
    return (None, None) if settled is None else settled


def sequence_limit(values, **options):
    """The limit of :func:`sequence_estimate` alone (``None`` when undetermined)."""
    return sequence_estimate(values, **options)[0]
