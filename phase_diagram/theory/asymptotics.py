"""Limits n → ∞ of exp-log sequences: exact (SymPy's Gruntz algorithm) within a work budget,
with a numeric fallback in log space.

Every expression the parser accepts (numbers, n, + − × ÷, constant powers, log, sqrt, exp) is
an exp-log function of n. By Hardy's theorem such a function is eventually of constant sign
and monotone, so its limit always exists in [−∞, ∞]; SymPy's ``limit`` (Gruntz's algorithm)
computes it exactly. SymPy has no bound of its own and can be slow or hang on some inputs, so
every symbolic computation here runs within a budget of steps (Python calls, counted: the
same on every machine, whatever its speed or load), and all computations on one scaling share
one allowance (:mod:`phase_diagram.theory.budgets`). When SymPy does not decide (budget, error,
``AccumBounds``, ``nan``, an unevaluated ``Limit``), :func:`~phase_diagram.theory.numeric.
numeric_limit` samples the sequence at n = 10^2, 10^4, …, 10^256 with
SymPy's arbitrary-precision ``evalf`` and analyses log|value| (so nothing overflows or
underflows); when that is not conclusive either, the limit is undetermined, with the reason.
"""
import math
from dataclasses import dataclass

import sympy

from .expressions import WIDTH
from .budgets import (LIMIT_STEPS, NUMERIC_STEPS, SCALING_STEPS, BudgetExceeded, StepBudget,
                      budget_note, call_with_budget)
from .numeric import (LIMIT_WIDTHS, LOG_WIDTHS, log_sequence_limit, numeric_limit,
                      sequence_estimate, sequence_limit)

__all__ = [
    "LimitValue", "exact_to_float", "limit_at_infinity", "eventual_sign",
    # re-exported from .budgets and .numeric
    "LIMIT_STEPS", "NUMERIC_STEPS", "SCALING_STEPS", "LIMIT_WIDTHS", "LOG_WIDTHS", "StepBudget",
    "BudgetExceeded", "call_with_budget", "numeric_limit", "sequence_estimate", "sequence_limit",
    "log_sequence_limit",
]


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
    error : float
        Uncertainty of a numeric ``approx`` (see :func:`~phase_diagram.theory.numeric.
        sequence_estimate`); 0 for an exact limit.
    """

    exact: object
    approx: float | None
    method: str
    note: str = ""
    error: float = 0.0

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


def _exact_limit(expr, steps, budget=None):
    """(exact limit or None, note) of ``expr`` as n → ∞ with SymPy, within ``steps``."""
    status, value = call_with_budget(lambda: sympy.limit(expr, WIDTH, sympy.oo), steps,
                                     budget, keep=NUMERIC_STEPS)
    if status == "budget":
        return None, budget_note("SymPy", steps, budget, NUMERIC_STEPS)
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


def limit_at_infinity(expr, *, positive=False, steps=None, budget=None):
    """The limit of ``expr`` as n → ∞ as a :class:`LimitValue`.

    Parameters
    ----------
    expr : sympy.Expr
        An expression in :data:`~phase_diagram.theory.expressions.WIDTH` (n, declared positive).
    positive : bool
        Whether the sequence is known to be positive for large n; the numeric fallback then
        works on log(value) and recognises limits 0 and ∞, otherwise only finite limits.
    steps : int, optional
        Budget of the SymPy computation (default :data:`LIMIT_STEPS`); 0 skips it.
    budget : StepBudget, optional
        Shared allowance that caps (and is charged for) the SymPy and numeric computations.
    """
    steps = LIMIT_STEPS if steps is None else steps
    if not expr.has(WIDTH) and expr.is_number and not _decided(expr):
        return LimitValue(expr, exact_to_float(expr), "sympy")       # a constant
    exact, note = (_exact_limit(expr, steps, budget) if steps > 0
                   else (None, "SymPy not tried"))
    if exact is not None:
        return LimitValue(exact, exact_to_float(exact), "sympy")
    approx, error, why = numeric_limit(expr, positive=positive, budget=budget)
    if approx is not None:
        return LimitValue(None, approx, "numeric", note, error)
    return LimitValue(None, None, "undetermined", f"{note}; {why}")


def eventual_sign(expr, *, steps=None, budget=None):
    """The sign of ``expr`` for all large n (+1, 0 for identically zero, −1), or ``None``.

    An exp-log function has a constant sign for all large n: the sign of its limit, or, when
    the limit is 0, the sign of the limit of its inverse (±∞). Decided exactly or not at all.

    Returns
    -------
    (sign, note)
        ``sign`` is ``None`` when SymPy cannot decide; ``note`` then says why.
    """
    steps = LIMIT_STEPS if steps is None else steps
    status, known = call_with_budget(
        lambda: 1 if expr.is_positive else -1 if expr.is_negative else
        0 if expr.is_zero else None, steps, budget)
    if status == "done" and known is not None:
        return known, ""
    value, note = _exact_limit(expr, steps, budget)
    if value is None:
        return None, note
    if value.is_extended_positive or value.is_extended_negative:
        return (1 if value.is_extended_positive else -1), ""
    if not value.is_zero:
        return None, f"SymPy cannot tell the sign of the limit {_short(value)}"
    inverse, note = _exact_limit(1 / expr, steps, budget)
    if inverse is sympy.oo or inverse is sympy.S.NegativeInfinity:
        return (1 if inverse is sympy.oo else -1), ""
    # Tends to 0 without a sign: perhaps identically zero in disguise (log(2n) - log 2 - log n).
    status, simplified = call_with_budget(
        lambda: sympy.simplify(sympy.expand_log(expr, force=True)), steps, budget)
    if status == "done" and simplified.is_zero:
        return 0, ""
    return None, note or f"the limit of its inverse is {_short(inverse)}, not +-oo"
