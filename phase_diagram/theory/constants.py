"""The limit constants and simplex limit of a scaling given by two expressions in n.

:func:`analyse_scaling` checks that τ_n and q_n are valid for all large n and computes, exactly
where SymPy can (:mod:`phase_diagram.theory.asymptotics`),

* τ_∞ = lim τ_n and q_∞ = lim min(1, q_n);
* α = lim τ_n / q_n and β = lim (1 − q_n)/(n q_n) (Chizat, Marion & Yesbay 2025, §3);
* the simplex limit lim (log n, −log τ_n, −log q_n)/S_n, S_n = log n − log τ_n − log q_n.

Shortcuts that are exact, and save SymPy calls: when q_∞ ∈ (0, 1], α = τ_∞/q_∞ and β = 0
(1 − q_n stays bounded while n q_n → ∞); when q_n → 1 clipping does not change any constant.
"""
from dataclasses import dataclass

import numpy as np
import sympy

from .asymptotics import LimitValue, eventual_sign, exact_to_float, limit_at_infinity
from .expressions import WIDTH, quote

__all__ = ["LimitConstants", "ScalingAsymptotics", "analyse_scaling", "check_valid_for_large_n",
           "exact_text", "format_exact", "numeric_simplex_point"]

_NAMES = ("alpha", "beta", "tau", "keep")


def exact_text(value, limit=60):
    """The exact SymPy value as text (``"1/2"``, ``"inf"``, ``"exp(-1)"``), or ``None`` if
    it is longer than ``limit`` characters."""
    if value.is_infinite:
        return "inf" if value.is_extended_positive else "-inf"
    try:
        text = str(value)
    except ValueError:                  # an integer beyond Python's digit limit for str()
        return None
    return text if len(text) <= limit else None


def format_exact(value, approx, error=0.0):
    """Text of a limit: ``"1/2 (0.5)"``, ``"0"``, ``"inf"``, ``"0.714 +- 0.003 (numeric)"``."""
    if approx is None:
        return "undetermined"
    if value is None:
        return f"{approx:.6g} +- {error:.2g} (numeric)" if error else f"{approx:.6g} (numeric)"
    text = exact_text(value)
    if text is None:
        return f"{approx:.6g} (exact value too long to print)"
    return text if value.is_Integer or value.is_infinite else f"{text} ({approx:.6g})"


@dataclass(frozen=True)
class LimitConstants:
    """The limit constants of a scaling (Chizat, Marion & Yesbay 2025, §3); ``None`` means undetermined.

    Attributes
    ----------
    alpha : float or None
        α = lim τ_n / q_n ∈ [0, ∞] (size of one kept per-neuron step; c in the notes).
    beta : float or None
        β = lim (1 − q_n)/(n q_n) ∈ [0, ∞] (penalty coefficient per unit time; λ in the notes).
    tau : float or None
        τ_∞ = lim τ_n ∈ [0, ∞].
    keep : float or None
        q_∞ = lim q_n ∈ [0, 1].
    exact : tuple
        The exact SymPy values of (α, β, τ_∞, q_∞), ``None`` where a constant was found
        numerically (or not at all).
    errors : tuple of float
        Uncertainties of (α, β, τ_∞, q_∞): 0 where exact, that of the numeric estimate
        otherwise.
    notes : tuple of str
        Remarks: constants found by the numeric fallback (and why SymPy did not decide them),
        clipping of q_n.
    undecided : tuple of str
        What could not be decided (a limit, the sign of an expression for large n) and why;
        the scaling is then not :attr:`determined`.
    """

    alpha: float | None
    beta: float | None
    tau: float | None
    keep: float | None
    exact: tuple = (None, None, None, None)
    notes: tuple = ()
    undecided: tuple = ()
    errors: tuple = (0.0, 0.0, 0.0, 0.0)

    @property
    def determined(self):
        """True when every constant has a limit of known kind (zero, finite positive or
        infinite) and nothing is left undecided."""
        return (None not in (self.alpha, self.beta, self.tau, self.keep) and not self.undecided
                and not self.ambiguous())

    def ambiguous(self):
        """The constants whose numeric estimate cannot be told from 0 (estimate ≤ uncertainty)."""
        return tuple(name for name in _NAMES if self.exact[_NAMES.index(name)] is None
                     and getattr(self, name) is not None
                     and 0.0 < getattr(self, name) <= self.errors[_NAMES.index(name)])

    def kind(self, name):
        """``"zero"``, ``"positive"`` (finite), ``"infinite"`` or ``None`` (undetermined).

        Decided on the exact value when there is one (no float underflow or overflow); a
        numeric estimate within its uncertainty of 0 is undetermined.
        """
        value, exact = getattr(self, name), self.exact[_NAMES.index(name)]
        if exact is not None and exact.is_infinite:
            return "infinite"
        if exact is not None and exact.is_zero is not None:
            return "zero" if exact.is_zero else "positive"
        if value is None or name in self.ambiguous():
            return None
        return "zero" if value == 0 else "infinite" if value == float("inf") else "positive"

    def text(self, name):
        """The constant as printed: exact with a float beside it, or numeric/undetermined."""
        index = _NAMES.index(name)
        return format_exact(self.exact[index], getattr(self, name), self.errors[index])


@dataclass(frozen=True)
class ScalingAsymptotics:
    """Everything :func:`analyse_scaling` found.

    Attributes
    ----------
    constants : LimitConstants
    simplex : tuple of LimitValue or None
        The limits of (log n, −log τ_n, −log q_n)/S_n, or ``None`` when S_n does not tend to
        +∞ like a positive multiple of log n or faster (no point).
    simplex_note : str
        Why the simplex limit is missing, if it is.
    """

    constants: LimitConstants
    simplex: tuple | None
    simplex_note: str = ""


def check_valid_for_large_n(parsed, budget=None):
    """Raise ``ValueError`` if ``parsed`` is not positive (or not real) for all large n.

    Returns what SymPy could not decide (tuple of str): such an expression is accepted, and
    its limit constants are then not :attr:`~LimitConstants.determined`.
    """
    notes = []
    sign, note = eventual_sign(parsed.expr, budget=budget)
    where = f"{parsed.name} expression {quote(parsed.text)}"
    if sign == 0:
        raise ValueError(f"{where} must be positive, but it is identically 0")
    if sign == -1:
        raise ValueError(f"{where} must be positive for all large n, but it is negative "
                         "for all large n")
    if sign is None:
        notes.append(f"the sign of {parsed.name} for large n is undecided ({note})")
    for what, arg in parsed.conditions:
        sign, note = eventual_sign(arg, budget=budget)
        if sign == -1 or (sign == 0 and "log" in what):
            raise ValueError(f"{where} is not real for large n: {what}, {quote(str(arg))}, is "
                             f"{'negative' if sign else 'identically 0'} for all large n")
        if sign is None:
            notes.append(f"the sign of {what} in {parsed.name} is undecided ({note})")
    return tuple(notes)


def _exact(value):
    value = sympy.Integer(value) if isinstance(value, int) else value
    return LimitValue(value, exact_to_float(value), "sympy")


def _ratio(a, b):
    """a/b of two determined LimitValues (b finite positive), exact when both are."""
    if a.exact is not None and b.exact is not None:
        return _exact(a.exact / b.exact) if not a.exact.is_infinite else _exact(sympy.oo)
    ratio = a.approx / b.approx
    # first-order propagation of the relative uncertainties (a finite here)
    error = abs(a.error / b.approx) + abs(ratio * b.error / b.approx)
    return LimitValue(None, ratio, "numeric", a.note or b.note, error)


def analyse_scaling(tau, keep, undecided=(), budget=None):
    """Limit constants and simplex limit of τ_n = ``tau``, q_n = min(1, ``keep``).

    Parameters
    ----------
    tau, keep : ParsedExpression
        Checked expressions (see :func:`phase_diagram.theory.expressions.parse_expression`), already
        accepted by :func:`check_valid_for_large_n`.
    undecided : tuple of str
        What that check could not decide, carried into the constants.
    budget : StepBudget, optional
        Allowance of steps for all the limits (see :mod:`phase_diagram.theory.budgets`).

    Returns
    -------
    ScalingAsymptotics
    """
    notes, undecided = [], list(undecided)
    n = WIDTH
    tau_inf = limit_at_infinity(tau.expr, positive=True, budget=budget)
    keep_lim = limit_at_infinity(keep.expr, positive=True, budget=budget)
    try:
        clipped = bool(keep_lim.exact >= 1)
    except TypeError:           # no exact value, or one SymPy cannot compare with 1
        clipped = keep_lim.determined and keep_lim.approx >= 1
    if clipped:
        # q_n -> q >= 1: min(1, q_n) -> 1, and no constant depends on how (alpha = tau_inf,
        # beta = 0 since 1 - q_n -> 0 and n q_n -> inf, u_q = 0).
        keep_inf, keep_eff = _exact(1), sympy.Integer(1)
        sign = 1 if keep_lim.approx > 1 else eventual_sign(keep.expr - 1, budget=budget)[0]
        if sign is not None and sign >= 0:
            notes.append("q_n >= 1 for all large n: clipped to 1")
    else:
        keep_inf, keep_eff = keep_lim, keep.expr
    if not (tau_inf.determined and keep_inf.determined):
        alpha = beta = LimitValue(None, None, "undetermined", "")
    elif keep_inf.sign() > 0:
        # q_inf in (0, 1]: alpha = tau_inf / q_inf and beta = 0.
        alpha = _exact(sympy.oo) if tau_inf.is_infinite() else _ratio(tau_inf, keep_inf)
        beta = _exact(0)
    else:
        alpha = _exact(sympy.oo) if tau_inf.sign() > 0 else \
            limit_at_infinity(tau.expr / keep.expr, positive=True, budget=budget)
        beta = limit_at_infinity((1 - keep.expr) / (n * keep.expr), positive=True,
                                 budget=budget)
    values = dict(alpha=alpha, beta=beta, tau=tau_inf, keep=keep_inf)
    for name, value in values.items():
        if value.method == "numeric":
            notes.append(f"{name} found by the numeric fallback: {value.note}")
        elif value.method == "undetermined" and value.note:
            undecided.append(f"{name}: {value.note}")
    constants = LimitConstants(
        *(values[name].approx for name in _NAMES),
        exact=tuple(values[name].exact for name in _NAMES), notes=tuple(notes),
        undecided=tuple(dict.fromkeys(undecided)),
        errors=tuple(values[name].error for name in _NAMES))
    simplex, why = _simplex_limit(tau, keep_eff, tau_inf, keep_inf, budget)
    return ScalingAsymptotics(constants, simplex, why)


def _simplex_limit(tau, keep_eff, tau_inf, keep_inf, budget):
    """(limits of (log n, −log τ_n, −log q_n)/S_n, note); (None, why) when undefined."""
    n, log = WIDTH, sympy.log
    zero = _exact(0)
    # a = lim −log τ_n / log n and b = lim −log q_n / log n; 0 when the limit is finite > 0.
    if tau_inf.determined and tau_inf.sign() > 0 and not tau_inf.is_infinite():
        a = zero
    else:
        a = limit_at_infinity(-log(tau.expr) / log(n), budget=budget)
    b = zero if (keep_inf.determined and keep_inf.sign() > 0) else \
        limit_at_infinity(-log(keep_eff) / log(n), budget=budget)
    if not (a.determined and b.determined):
        return None, "the limit of -log(tau_n)/log(n) or -log(q_n)/log(n) is undetermined"
    if a.approx == -float("inf"):
        return None, "S_n -> -inf (tau_n grows faster than any power of n)"
    if not (a.is_infinite() or b.is_infinite()):
        if a.exact is not None and b.exact is not None:
            total = 1 + a.exact + b.exact
            if not total.is_positive:
                return None, f"S_n/log(n) -> {total} <= 0"
            return tuple(_exact(u / total) for u in (1, a.exact, b.exact)), ""
        total = 1 + a.approx + b.approx
        if not total > 0:
            return None, f"S_n/log(n) -> {total:g} <= 0"
        return _numeric_point(*numeric_simplex_point(a.approx, b.approx, a.error, b.error))
    # −log τ_n or −log q_n grows faster than log n: take the ratios to S_n directly.
    total = log(n) - log(tau.expr) - log(keep_eff)
    u_n = limit_at_infinity(log(n) / total, budget=budget)
    u_q = zero if b.approx == 0 else limit_at_infinity(-log(keep_eff) / total, budget=budget)
    if not (u_n.determined and u_q.determined):
        return None, "the limit of log(n)/S_n or -log(q_n)/S_n is undetermined"
    if u_n.exact is not None and u_q.exact is not None:
        return (u_n, _exact(1 - u_n.exact - u_q.exact), u_q), ""
    point = np.array([u_n.approx, 1 - u_n.approx - u_q.approx, u_q.approx])
    errors = np.array([u_n.error, u_n.error + u_q.error, u_q.error])
    return _numeric_point(_clip_to_simplex(point, errors), errors)


def numeric_simplex_point(a, b, a_error, b_error):
    """The simplex limit (1, a, b)/(1 + a + b) from numeric estimates of a = lim −log τ_n/log n
    and b = lim −log q_n/log n (1 + a + b > 0), with its uncertainties.

    Returns
    -------
    (numpy.ndarray or None, numpy.ndarray)
        The point clipped to the simplex (:func:`_clip_to_simplex`; ``None`` when it lies
        outside beyond its uncertainty) and the uncertainties of its coordinates, propagated to
        first order from those of a and b.
    """
    total = 1.0 + a + b
    point = np.array([1.0, a, b]) / total
    errors = (np.array([0.0, a_error, b_error]) + np.abs(point) * (a_error + b_error)) / total
    return _clip_to_simplex(point, errors), errors


def _clip_to_simplex(point, errors):
    """A numeric estimate of a simplex limit (u_n, u_τ, u_q), clipped to the simplex.

    A coordinate below 0 by at most its uncertainty is set to 0 and the point renormalised to
    sum 1 (each coordinate moves by at most the clipped amount, so within its uncertainty).
    u_n and u_q are ≥ 0 for every scaling; u_τ < 0 beyond its uncertainty is kept (τ_n grows
    like a power of n: the limit lies outside the simplex).

    Returns
    -------
    numpy.ndarray or None
        The point, or ``None`` when u_n or u_q is negative beyond its uncertainty (the
        estimate is then wrong, and the limit undetermined).
    """
    point, errors = np.array(point, dtype=float), np.asarray(errors, dtype=float)
    if point[0] < -errors[0] or point[2] < -errors[2]:
        return None
    point[(point < 0) & (point >= -errors)] = 0.0
    return point / point.sum()


def _numeric_point(clipped, errors):
    """(numeric simplex limit as LimitValues, note) from a clipped estimate and its
    uncertainties."""
    if clipped is None:
        return None, ("the numeric estimate of the simplex limit is outside the simplex "
                      "beyond its uncertainty")
    return tuple(LimitValue(None, float(u), "numeric", "", float(e))
                 for u, e in zip(clipped, errors)), ""
