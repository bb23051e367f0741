"""Limits n → ∞ of exp-log sequences: exact (SymPy's Gruntz algorithm) under a time limit,
with a numeric fallback in log space.

Every expression the parser accepts (numbers, n, + − × ÷, constant powers, log, sqrt, exp) is
an exp-log function of n. By Hardy's theorem such a function is eventually of constant sign
and monotone, so its limit always exists in [−∞, ∞]; SymPy's ``limit`` (Gruntz's algorithm)
computes it exactly. SymPy has no time limit of its own and can be slow or hang on some
inputs, so every symbolic computation here runs in a short-lived worker thread with a
CPU-time limit, and all computations on one scaling share a budget
(:mod:`phase_diagram.theory.timeouts`). When SymPy does not decide (time limit, error,
``AccumBounds``, ``nan``, an unevaluated ``Limit``), :func:`~phase_diagram.theory.numeric.
numeric_limit` samples the sequence at n = 10^2, 10^4, …, 10^256 with
SymPy's arbitrary-precision ``evalf`` and analyses log|value| (so nothing overflows or
underflows); when that is not conclusive either, the limit is undetermined, with the reason.
"""
import math
from dataclasses import dataclass

import sympy

from .expressions import WIDTH
from .numeric import (LIMIT_WIDTHS, LOG_WIDTHS, NUMERIC_TIME_LIMIT, log_sequence_limit,
                      numeric_limit, sequence_limit)
from .timeouts import (SCALING_TIME_BUDGET, LimitTimeout, TimeBudget, call_with_time_limit,
                       timeout_note)

__all__ = [
    "LIMIT_TIME_LIMIT", "LimitValue", "exact_to_float", "limit_at_infinity", "eventual_sign",
    # re-exported from .timeouts and .numeric
    "SCALING_TIME_BUDGET", "NUMERIC_TIME_LIMIT", "LIMIT_WIDTHS", "LOG_WIDTHS", "TimeBudget",
    "LimitTimeout", "call_with_time_limit", "numeric_limit", "sequence_limit",
    "log_sequence_limit",
]

#: Seconds (CPU) allowed to one SymPy computation (a limit or an eventual sign).
LIMIT_TIME_LIMIT = 0.4


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
            if value.is_zero:
                return 0
            if value.is_extended_positive or value.is_extended_negative:
                return 1 if value.is_extended_positive else -1
        if self.approx is None:
            return None
        return (self.approx > 0) - (self.approx < 0)

    def is_infinite(self):
        """True for a limit ±∞, ``None`` if undetermined."""
        if self.exact is not None:
            return bool(self.exact.is_infinite)
        return None if self.approx is None else math.isinf(self.approx)


def _short(value, limit=60):
    """One-line text of a SymPy object or message, cut to about ``limit`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _decided(value):
    """Why a SymPy limit result does not count as a decided real limit, or ``""``."""
    if isinstance(value, sympy.AccumBounds):
        return f"SymPy returned the bounds {_short(value)}"
    if isinstance(value, sympy.Limit) or value.has(sympy.Limit):
        return "SymPy returned the limit unevaluated"
    if value is sympy.nan or value is sympy.zoo or value.free_symbols:
        return f"SymPy returned {_short(value)}"
    if not (value.is_extended_real and (value.is_infinite or value.is_number)):
        return f"SymPy returned the non-real value {_short(value)}"
    return ""


def _exact_limit(expr, seconds, budget=None):
    """(exact limit or None, note) of ``expr`` as n → ∞ with SymPy, within ``seconds``."""
    status, value = call_with_time_limit(lambda: sympy.limit(expr, WIDTH, sympy.oo), seconds,
                                         budget, keep=NUMERIC_TIME_LIMIT)
    if status == "timeout":
        return None, timeout_note("SymPy", seconds, budget, NUMERIC_TIME_LIMIT)
    if status == "error":
        return None, f"SymPy failed ({type(value).__name__}: {_short(value, 80)})"
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
        An expression in :data:`~phase_diagram.theory.expressions.WIDTH` (n, declared positive).
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
    status, known = call_with_time_limit(
        lambda: 1 if expr.is_positive else -1 if expr.is_negative else
        0 if expr.is_zero else None, seconds, budget)
    if status == "done" and known is not None:
        return known, ""
    value, note = _exact_limit(expr, seconds, budget)
    if value is None:
        return None, note
    if value.is_extended_positive or value.is_extended_negative:
        return (1 if value.is_extended_positive else -1), ""
    if not value.is_zero:
        return None, f"SymPy cannot tell the sign of the limit {_short(value)}"
    inverse, note = _exact_limit(1 / expr, seconds, budget)
    if inverse is sympy.oo or inverse is sympy.S.NegativeInfinity:
        return (1 if inverse is sympy.oo else -1), ""
    # Tends to 0 without a sign: perhaps identically zero in disguise (log(2n) - log 2 - log n).
    status, simplified = call_with_time_limit(
        lambda: sympy.simplify(sympy.expand_log(expr, force=True)), seconds, budget)
    if status == "done" and simplified.is_zero:
        return 0, ""
    return None, note or f"the limit of its inverse is {_short(inverse)}, not +-oo"
