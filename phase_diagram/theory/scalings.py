"""Hyperparameter scalings n ↦ (τ_n, q_n) and their limit constants.

A scaling gives, for every width n, the master learning rate τ_n and the keep probability
q_n ∈ (0, 1] (clipped to 1 from above). The phase of dropout in the large-width limit is read off

* the barycentric point u = (log n, −log τ_n, −log q_n) / S_n, S_n = log n − log τ_n − log q_n,
  and its limit as n → ∞ (Figure 1 of Chizat, Marion & Yesbay);
* the limit constants α = lim τ_n/q_n, β = lim (1 − q_n)/(n q_n) and τ_∞ = lim τ_n
  (Chizat, Marion & Yesbay 2025, §3).

:func:`parse_scaling` turns strings such as ``"0.5*n**-1.5"`` into an
:class:`ExpressionScaling` through a whitelisted ``ast`` walk (never ``eval``,
:mod:`phase_diagram.theory.expressions`); its limits are exact, computed by SymPy
(:mod:`phase_diagram.theory.constants`, :mod:`phase_diagram.theory.asymptotics`), and its values at
concrete widths are plain floats (what scans use). Arbitrary Python callables
(:class:`CallableScaling`) are handled numerically, with ``None`` ("undetermined") when a
sequence does not settle.
"""
import abc
import math
from fractions import Fraction

import mpmath
import numpy as np
import sympy

from meanfield_dropout.validation import check_int, check_positive, check_real

from .expressions import WIDTH, format_width, parse_expression
from .numeric import LIMIT_WIDTHS, sequence_estimate, sequence_limit
from .power_logs import PowerLog, power_log_form
from .constants import (LimitConstants, analyse_scaling, check_valid_for_large_n,
                        numeric_simplex_point)
from .budgets import LIMIT_STEPS, StepBudget, call_with_budget

__all__ = [
    "PowerLog", "LimitConstants", "Scaling", "ExpressionScaling", "PowerLogScaling",
    "CallableScaling", "power_law", "parse_scaling", "sequence_limit", "LIMIT_WIDTHS",
]


class Scaling(abc.ABC):
    """A hyperparameter scaling n ↦ (τ_n, q_n); subclasses define the sequences and limits."""

    label = "scaling"

    @abc.abstractmethod
    def tau(self, n):
        """Master learning rate τ_n at width ``n``."""

    @abc.abstractmethod
    def keep(self, n):
        """Keep probability q_n ∈ (0, 1] at width ``n`` (clipped to 1 from above)."""

    @abc.abstractmethod
    def constants(self):
        """The :class:`LimitConstants` (α, β, τ_∞, q_∞)."""

    @abc.abstractmethod
    def simplex_limit(self):
        """lim u_n as an array (u_n, u_τ, u_q), or ``None`` if the limit does not exist.

        The coordinates sum to 1; u_τ < 0 (a point outside the simplex) when τ_n grows
        polynomially, a degenerate scaling (α = ∞).
        """

    def simplex_limit_exact(self):
        """The simplex limit as exact SymPy numbers, or ``None`` (numeric or missing)."""
        return None

    def simplex_limit_error(self):
        """The largest uncertainty of the simplex limit's coordinates (0 when exact), or
        ``None`` when unknown or there is no limit."""
        return None

    def simplex_point(self, n):
        """The barycentric point (log n, −log τ_n, −log q_n) / S_n at width ``n``.

        Raises ``ValueError`` when S_n = log n − log τ_n − log q_n is not positive (the point is
        then not defined).
        """
        n = check_int(n, "n", low=1)
        logs = np.array([math.log(n), -math.log(self.tau(n)), -math.log(self.keep(n))])
        return _normalised(logs, n)

    def __repr__(self):
        return f"<{type(self).__name__} {self.label}>"


def _normalised(logs, n):
    total = logs.sum()
    if not total > 0:
        raise ValueError(f"S_n = log n - log tau_n - log q_n = {total:g} <= 0 at n={n}; "
                         "the barycentric point is undefined")
    return logs / total


class ExpressionScaling(Scaling):
    """τ_n and q_n given by expressions in n, with exact limits.

    The expressions must be positive for all large n; this is checked symbolically when the
    scaling is made (:func:`~phase_diagram.theory.constants.check_valid_for_large_n`). The limit
    constants and the simplex limit are computed once, on first use, by SymPy (with a numeric
    log-space fallback where SymPy does not decide within its budget). Values at concrete widths are
    plain floats (fast; ``ValueError`` where floats overflow or underflow), and
    :meth:`precise_values` gives arbitrary-precision values at any width.

    Parameters
    ----------
    tau, keep : ParsedExpression
        From :func:`~phase_diagram.theory.expressions.parse_expression`.
    label : str, optional
        Display name; defaults to the formulas.

    Raises
    ------
    ValueError
        If an expression is negative, identically zero or not real for all large n.
    """

    def __init__(self, tau, keep, label=None):
        self.tau_expression, self.keep_expression = tau, keep
        self.label = label or f"τ={tau.text}, q={keep.text}"
        self._budget = StepBudget()
        self._undecided = (check_valid_for_large_n(tau, self._budget)
                           + check_valid_for_large_n(keep, self._budget))
        self._asymptotics = None

    @property
    def asymptotics(self):
        """The :class:`~phase_diagram.theory.constants.ScalingAsymptotics` (computed once)."""
        if self._asymptotics is None:
            self._asymptotics = analyse_scaling(self.tau_expression, self.keep_expression,
                                                self._undecided, self._budget)
        return self._asymptotics

    @property
    def steps_spent(self):
        """Steps (:mod:`~phase_diagram.theory.budgets`) spent so far on this scaling's limits,
        out of :data:`~phase_diagram.theory.budgets.SCALING_STEPS`."""
        return self._budget.spent

    @staticmethod
    def _value(parsed, n):
        value = parsed(n)
        if not value > 0:
            raise ValueError(f"{parsed.name}_n = {parsed.text} is {value:.6g} at "
                             f"n={format_width(n)}, not a positive float")
        return value

    def tau(self, n):
        return self._value(self.tau_expression, n)

    def keep(self, n):
        return min(1.0, self._value(self.keep_expression, n))

    def constants(self):
        return self.asymptotics.constants

    def simplex_limit(self):
        point = self.asymptotics.simplex
        return None if point is None else np.array([u.approx for u in point], dtype=float)

    def simplex_limit_exact(self):
        point = self.asymptotics.simplex
        if point is None or any(u.exact is None for u in point):
            return None
        return tuple(u.exact for u in point)

    def simplex_limit_error(self):
        point = self.asymptotics.simplex
        return None if point is None else max(u.error for u in point)

    def precise_values(self, n):
        """(τ_n, q_n) at width ``n`` as mpmath numbers (any integer n, no overflow).

        Raises ``ValueError`` if a value is not a positive real at that width.
        """
        n = check_int(n, "n", low=1)
        exprs = (self.tau_expression, self.keep_expression)
        status, values = call_with_budget(
            lambda: [p.expr.evalf(30, subs={WIDTH: sympy.Integer(n)}) for p in exprs],
            LIMIT_STEPS)
        if status != "done":
            why = f"more than {LIMIT_STEPS:,} steps" if status == "budget" else repr(values)
            raise ValueError(f"tau_n, q_n cannot be evaluated at this n ({why})")
        out = []
        for parsed, value in zip(exprs, values):
            if not (value.is_Float and value > 0):
                raise ValueError(f"{parsed.name}_n = {parsed.text} is not positive at "
                                 f"n={format_width(n)} ({sympy.N(value, 6)})")
            out.append(mpmath.mpf(value._mpf_))
        return out[0], min(mpmath.mpf(1), out[1])

    def simplex_point(self, n):
        """As :meth:`Scaling.simplex_point`, for any integer n (arbitrary precision)."""
        tau, keep = self.precise_values(n)
        logs = np.array([float(mpmath.log(n)), -float(mpmath.log(tau)),
                         -float(mpmath.log(keep))])
        return _normalised(logs, n)

    def __reduce__(self):
        return (_expression_scaling, (self.tau_expression.text, self.keep_expression.text,
                                      self.label))


def _expression_scaling(tau_text, keep_text, label):
    return parse_scaling(tau_text, keep_text, label=label)


class PowerLogScaling(ExpressionScaling):
    """τ_n = τ₀ n^a (log n)^c and q_n = min(1, q₀ n^b (log n)^d).

    An :class:`ExpressionScaling` that also keeps the two :class:`PowerLog` descriptions
    (``tau_seq``, ``keep_seq``); its limits are computed the same way.

    Parameters
    ----------
    tau_seq, keep_seq : PowerLog
        The sequences for τ_n and (before clipping to 1) q_n.
    label : str, optional
        Display name; defaults to the formulas.
    expressions : tuple of ParsedExpression, optional
        The parsed expressions these sequences came from (by default parsed from
        :meth:`PowerLog.source`).
    """

    def __init__(self, tau_seq, keep_seq, label=None, *, expressions=None):
        check_positive(tau_seq.coef, "tau coefficient")
        check_positive(keep_seq.coef, "keep coefficient")
        self.tau_seq, self.keep_seq = tau_seq, keep_seq
        if expressions is None:
            expressions = (parse_expression(tau_seq.source(), "tau"),
                           parse_expression(keep_seq.source(), "keep"))
        super().__init__(*expressions, label=label or f"τ={tau_seq.text()}, q={keep_seq.text()}")

    def __reduce__(self):
        return (PowerLogScaling, (self.tau_seq, self.keep_seq, self.label))


def power_law(tau0, b_tau, keep0, b_keep, *, tau_log=0, keep_log=0, label=None):
    """A power law with log factors as a :class:`PowerLogScaling`.

    τ_n = τ₀ n^(−b_τ) (log n)^(−tau_log) and q_n = min(1, q₀ n^(−b_q) (log n)^(−keep_log)).
    Exponents are converted to exact fractions (decimal literals such as 0.3 become 3/10).

    Examples
    --------
    Penalized WGF through a log factor, τ_n = 1/(n log n), q_n = 1/n:

    >>> power_law(1, 1, 1, 1, tau_log=1).constants().beta
    1.0
    """
    def exact(value, name):
        return Fraction(repr(check_real(value, name)))

    return PowerLogScaling(
        PowerLog(check_positive(tau0, "tau0"), -exact(b_tau, "b_tau"), -exact(tau_log, "tau_log")),
        PowerLog(check_positive(keep0, "keep0"), -exact(b_keep, "b_keep"),
                 -exact(keep_log, "keep_log")),
        label=label)


class CallableScaling(Scaling):
    """A scaling given by two Python callables ``tau_fn(n)`` and ``keep_fn(n)`` (numerical limits).

    Limits are estimated on the widths :data:`LIMIT_WIDTHS` with :func:`sequence_estimate`; a
    constant that does not settle is ``None`` (undetermined). The callables receive a float
    ``n`` and must return positive numbers; q_n is clipped to 1 from above.
    """

    def __init__(self, tau_fn, keep_fn, label="callable scaling"):
        if not (callable(tau_fn) and callable(keep_fn)):
            raise ValueError("tau_fn and keep_fn must be callables n -> value")
        self.tau_fn = tau_fn
        self.keep_fn = keep_fn
        self.label = label

    def _value(self, fn, n, name):
        try:
            value = float(fn(n))
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise ValueError(f"{name} cannot be evaluated at n={n:g}: {exc}") from None
        if not value > 0 or math.isnan(value):
            raise ValueError(f"{name} must be > 0, got {value!r} at n={n:g}")
        return value

    def tau(self, n):
        return self._value(self.tau_fn, n, "tau_n")

    def keep(self, n):
        return min(1.0, self._value(self.keep_fn, n, "q_n"))

    def _samples(self, fn):
        """fn at LIMIT_WIDTHS, with NaN where it cannot be evaluated; 0/∞ from under/overflow."""
        out = []
        for n in LIMIT_WIDTHS:
            try:
                out.append(float(fn(n)))
            except OverflowError:
                out.append(math.inf)
            except (ArithmeticError, TypeError, ValueError):
                out.append(math.nan)
        return np.array(out)

    def constants(self):
        tau = self._samples(self.tau_fn)
        keep = np.minimum(1.0, self._samples(self.keep_fn))
        widths = np.array(LIMIT_WIDTHS)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = tau / keep
            beta = (1.0 - keep) / (widths * keep)
        estimates = [sequence_estimate(values) for values in (alpha, beta, tau, keep)]
        values = [value for value, _ in estimates]
        if values[3] is not None:
            values[3] = min(1.0, values[3])
        return LimitConstants(*values, errors=tuple(error or 0.0 for _, error in estimates))

    def simplex_limit(self):
        logn = np.log(np.array(LIMIT_WIDTHS))
        tau = self._samples(self.tau_fn)
        keep = np.minimum(1.0, self._samples(self.keep_fn))
        if not (np.all(tau > 0) and np.all(keep > 0) and np.isfinite(tau).all()):
            return None
        return self._simplex_estimate()[0]

    def simplex_limit_error(self):
        return self._simplex_estimate()[1]

    def _simplex_estimate(self):
        """(numeric simplex limit clipped to the simplex, its largest uncertainty) or
        (None, None)."""
        logn = np.log(np.array(LIMIT_WIDTHS))
        tau = self._samples(self.tau_fn)
        keep = np.minimum(1.0, self._samples(self.keep_fn))
        if not (np.all(tau > 0) and np.all(keep > 0) and np.isfinite(tau).all()):
            return None, None
        u_tau, e_tau = sequence_estimate(-np.log(tau) / logn, positive=False)
        u_keep, e_keep = sequence_estimate(-np.log(keep) / logn, positive=False)
        if u_tau is None or u_keep is None or not 1.0 + u_tau + u_keep > 0:
            return None, None
        point, errors = numeric_simplex_point(u_tau, u_keep, e_tau, e_keep)
        return (None, None) if point is None else (point, float(errors.max()))




def parse_scaling(tau_expr, keep_expr, *, label=None):
    """Parse τ_n and q_n expressions in ``n`` into a scaling with exact limits.

    Allowed: numbers, the width ``n``, ``+ - * / **`` (constant exponents), unary minus and
    ``log``, ``sqrt``, ``exp`` (see :mod:`phase_diagram.theory.expressions`). Both expressions must
    be positive for all large n (checked symbolically); q_n is clipped to 1 from above.

    Parameters
    ----------
    tau_expr : str
        The master learning rate τ_n, e.g. ``"0.5*n**-0.5"`` or ``"1/(n*log(n))"``.
    keep_expr : str
        The keep probability q_n, e.g. ``"0.7"``, ``"1/n"`` or ``"1-1/log(n)"``.
    label : str, optional
        Display name (default ``"τ=..., q=..."``).

    Returns
    -------
    ExpressionScaling
        A :class:`PowerLogScaling` when both expressions are exactly c·n^p·(log n)^l.

    Raises
    ------
    ValueError
        One line naming the argument: malformed expressions, names or functions outside the
        whitelist, huge constants, n in an exponent, expressions that are negative,
        identically zero or not real for all large n.
    """
    tau = parse_expression(tau_expr, "tau")
    keep = parse_expression(keep_expr, "keep")
    label = label or f"τ={tau.text}, q={keep.text}"
    forms = (power_log_form(tau.expr), power_log_form(keep.expr))
    if None not in forms:
        return PowerLogScaling(*forms, label=label, expressions=(tau, keep))
    return ExpressionScaling(tau, keep, label=label)
