"""Hyperparameter scalings n ↦ (τ_n, q_n) and their limit constants.

A scaling gives, for every width n, the master learning rate τ_n and the keep probability
q_n ∈ (0, 1]. The phase of dropout in the large-width limit is read off

* the barycentric point u = (log n, −log τ_n, −log q_n) / S_n, S_n = log n − log τ_n − log q_n,
  and its limit as n → ∞ (Figure 1 of Chizat, Marion & Yesbay);
* the limit constants α = lim τ_n/q_n, β = lim (1 − q_n)/(n q_n) and τ_∞ = lim τ_n
  (notes §3.2, where α is called c and β is called λ).

Power laws with log factors, τ₀ n^(−b) (log n)^(−c), are handled exactly; arbitrary Python
callables are handled numerically, with ``None`` ("undetermined") when a sequence does not
settle. :func:`parse_scaling` turns strings such as ``"0.5*n**-1.5"`` into scalings through a
whitelisted ``ast`` walk (never ``eval``).
"""
import abc
import ast
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from meanfield_dropout._validate import check_int, check_positive, check_real

__all__ = [
    "PowerLog", "LimitConstants", "Scaling", "PowerLogScaling", "CallableScaling",
    "power_law", "parse_scaling", "sequence_limit",
]


@dataclass(frozen=True)
class PowerLog:
    """The positive sequence ``coef * n**n_power * log(n)**log_power``.

    Parameters
    ----------
    coef : float
        The constant factor (> 0).
    n_power, log_power : Fraction
        Exponents of n and of log n (exact rationals, so limits compare exactly).
    """

    coef: float
    n_power: Fraction = Fraction(0)
    log_power: Fraction = Fraction(0)

    def __call__(self, n):
        """The value at width ``n`` (``n >= 2`` when there is a log factor)."""
        if self.log_power and n < 2:
            raise ValueError(f"a log(n) factor needs n >= 2, got n={n}")
        value = self.coef * float(n) ** float(self.n_power)
        if self.log_power:
            value *= math.log(n) ** float(self.log_power)
        return value

    def growth(self):
        """Sign of the trend: −1 if the sequence → 0, 0 if it is constant, +1 if it → ∞."""
        lead = self.n_power if self.n_power else self.log_power
        return (lead > 0) - (lead < 0)

    def limit(self):
        """lim_{n→∞} of the sequence, in [0, ∞]."""
        return {-1: 0.0, 0: self.coef, 1: math.inf}[self.growth()]

    def __mul__(self, other):
        return PowerLog(self.coef * other.coef, self.n_power + other.n_power,
                        self.log_power + other.log_power)

    def __truediv__(self, other):
        return PowerLog(self.coef / other.coef, self.n_power - other.n_power,
                        self.log_power - other.log_power)

    def text(self):
        """Readable formula, e.g. ``0.5·n^-1.5·log(n)^-1``."""
        parts = [f"{self.coef:g}"]
        if self.n_power:
            parts.append("n" if self.n_power == 1 else f"n^{_fraction_text(self.n_power)}")
        if self.log_power:
            parts.append("log(n)" if self.log_power == 1
                         else f"log(n)^{_fraction_text(self.log_power)}")
        if len(parts) > 1 and parts[0] == "1":
            parts.pop(0)
        return "·".join(parts)


def _fraction_text(value):
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


@dataclass(frozen=True)
class LimitConstants:
    """The limit constants of a scaling (notes §3.2); ``None`` means undetermined.

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
    """

    alpha: float | None
    beta: float | None
    tau: float | None
    keep: float | None

    @property
    def determined(self):
        """True when every constant has a limit."""
        return None not in (self.alpha, self.beta, self.tau, self.keep)


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

    def simplex_point(self, n):
        """The barycentric point (log n, −log τ_n, −log q_n) / S_n at width ``n``.

        Raises ``ValueError`` when S_n = log n − log τ_n − log q_n is not positive (the point is
        then not defined).
        """
        n = check_int(n, "n", low=1)
        logs = np.array([math.log(n), -math.log(self.tau(n)), -math.log(self.keep(n))])
        total = logs.sum()
        if not total > 0:
            raise ValueError(f"S_n = log n - log tau_n - log q_n = {total:g} <= 0 at n={n}; "
                             "the barycentric point is undefined")
        return logs / total

    def __repr__(self):
        return f"<{type(self).__name__} {self.label}>"


class PowerLogScaling(Scaling):
    """τ_n = τ₀ n^a (log n)^c and q_n = min(1, q₀ n^b (log n)^d), with exact limits.

    Parameters
    ----------
    tau_seq, keep_seq : PowerLog
        The sequences for τ_n and (before clipping to 1) q_n.
    label : str, optional
        Display name; defaults to the formulas.
    """

    def __init__(self, tau_seq, keep_seq, label=None):
        check_positive(tau_seq.coef, "tau coefficient")
        check_positive(keep_seq.coef, "keep coefficient")
        self.tau_seq = tau_seq
        self.keep_seq = keep_seq
        self.label = label or f"τ={tau_seq.text()}, q={keep_seq.text()}"

    def tau(self, n):
        return self.tau_seq(n)

    def keep(self, n):
        return min(1.0, self.keep_seq(n))

    def _keep_is_clipped(self):
        """True when q_n = 1 for all large n (the unclipped sequence tends to a limit ≥ 1)."""
        return self.keep_seq.limit() >= 1.0

    def constants(self):
        tau_inf = self.tau_seq.limit()
        if self._keep_is_clipped():
            # q_n = 1 eventually: 1 − q_n = 0 exactly, α = lim τ_n.
            return LimitConstants(alpha=tau_inf, beta=0.0, tau=tau_inf, keep=1.0)
        keep_inf = self.keep_seq.limit()
        alpha = (self.tau_seq / self.keep_seq).limit()
        if keep_inf > 0:
            # q_n → q ∈ (0, 1): (1 − q_n)/(n q_n) → 0.
            beta = 0.0
        else:
            # 1 − q_n → 1, so β = lim 1/(n q_n).
            beta = (PowerLog(1.0) / (PowerLog(1.0, Fraction(1)) * self.keep_seq)).limit()
        return LimitConstants(alpha=alpha, beta=beta, tau=tau_inf, keep=keep_inf)

    def simplex_limit(self):
        # −log τ_n / log n → −a and −log q_n / log n → −b (0 when clipped); log-log terms vanish.
        b_tau = -self.tau_seq.n_power
        b_keep = Fraction(0) if self._keep_is_clipped() else -self.keep_seq.n_power
        total = 1 + b_tau + b_keep
        if total <= 0:
            return None
        return np.array([1, b_tau, b_keep], dtype=float) / float(total)


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


# ---------------------------------------------------------------------------------------------
# Numerical limits for callables
# ---------------------------------------------------------------------------------------------

#: Widths n_j = 10^(2^j), j = 1..7, used for numerical limits. On this doubly-geometric grid
#: successive differences of log(value) double for a power of n, stay constant for a power of
#: log n, and halve (or shrink faster) when the value settles to a constant.
LIMIT_WIDTHS = tuple(10.0 ** (2 ** j) for j in range(1, 8))


def sequence_limit(values, *, positive=True, settle_ratio=0.7, trend_ratio=0.8, atol=1e-9):
    """Numerical limit of a sequence sampled at :data:`LIMIT_WIDTHS`, or ``None``.

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
        Same-sign differences with ratio ≥ trend_ratio count as a power/log-power trend to 0 or ∞,
        provided the values themselves (their inverses for ∞) extrapolate to about 0: a constant
        plus a slowly vanishing term, c + (log n)^(−p) with small p, also has log-differences
        of ratio near 1 but extrapolates to c, and is then undetermined.
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
        # Trailing exact zeros / infinities (underflow, clipping, overflow) decide the limit.
        if values[-1] == 0.0 and values[-2] == 0.0:
            return 0.0
        if math.isinf(values[-1]) and math.isinf(values[-2]):
            return math.inf
        finite = values[(values > 0) & np.isfinite(values)]
        if finite.size != values.size:
            return None
        seq = np.log(values)
    else:
        if not np.isfinite(values).all():
            return None
        seq = values
    diffs = np.diff(seq)[-3:]
    if np.all(np.abs(diffs) <= atol * max(1.0, abs(seq[-1]))):
        return float(math.exp(seq[-1]) if positive else seq[-1])
    if np.all(diffs > 0) or np.all(diffs < 0):
        ratios = diffs[1:] / diffs[:-1]
        if positive and np.all(ratios >= trend_ratio):
            growing = diffs[-1] > 0
            if _extrapolates_to_zero(1.0 / values if growing else values):
                return math.inf if growing else 0.0
            return None
        if np.all(ratios <= settle_ratio):
            rho = ratios[-1]
            tail = seq[-1] + diffs[-1] * rho / (1.0 - rho)
            return float(math.exp(tail) if positive else tail)
    return None


def _extrapolates_to_zero(values, fraction=0.25):
    """Whether positive decreasing samples head to 0 rather than to a positive constant.

    The last three values are extrapolated with their geometric tail (Aitken's Δ²); the
    sequence heads to 0 when the extrapolated limit is below ``fraction`` times the last value
    (differences that do not shrink geometrically give no positive limit).
    """
    x = values[-3:]
    dx = np.diff(x)
    rho = dx[1] / dx[0]
    if not 0.0 < rho < 1.0:
        return True
    return x[-1] + dx[1] * rho / (1.0 - rho) < fraction * x[-1]


class CallableScaling(Scaling):
    """A scaling given by two Python callables ``tau_fn(n)`` and ``keep_fn(n)`` (numerical limits).

    Limits are estimated on the widths :data:`LIMIT_WIDTHS` with :func:`sequence_limit`; a
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
        keep_inf = sequence_limit(keep)
        return LimitConstants(alpha=sequence_limit(alpha), beta=sequence_limit(beta),
                              tau=sequence_limit(tau),
                              keep=None if keep_inf is None else min(1.0, keep_inf))

    def simplex_limit(self):
        logn = np.log(np.array(LIMIT_WIDTHS))
        tau = self._samples(self.tau_fn)
        keep = np.minimum(1.0, self._samples(self.keep_fn))
        if not (np.all(tau > 0) and np.all(keep > 0) and np.isfinite(tau).all()):
            return None
        u_tau = sequence_limit(-np.log(tau) / logn, positive=False)
        u_keep = sequence_limit(-np.log(keep) / logn, positive=False)
        if u_tau is None or u_keep is None or not 1.0 + u_tau + u_keep > 0:
            return None
        return np.array([1.0, u_tau, u_keep]) / (1.0 + u_tau + u_keep)


# ---------------------------------------------------------------------------------------------
# Safe expression parser
# ---------------------------------------------------------------------------------------------

_FUNCTIONS = {"log": math.log, "sqrt": math.sqrt, "exp": math.exp}
_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
           ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
           ast.Pow: lambda a, b: a ** b}


def _check_tree(node, text):
    """Reject every node outside the whitelist (numbers, n, + - * / **, log/sqrt/exp)."""
    called = {id(sub.func) for sub in ast.walk(node) if isinstance(sub, ast.Call)}
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Expression, ast.Load, ast.BinOp)):
            continue
        if isinstance(sub, ast.operator):
            if type(sub) not in _BINARY:
                raise ValueError(f"operator {type(sub).__name__} not allowed in {text!r}")
        elif isinstance(sub, ast.UnaryOp):
            if not isinstance(sub.op, (ast.UAdd, ast.USub)):
                raise ValueError(f"operator {type(sub.op).__name__} not allowed in {text!r}")
        elif isinstance(sub, (ast.UAdd, ast.USub)):
            continue
        elif isinstance(sub, ast.Constant):
            if isinstance(sub.value, bool) or not isinstance(sub.value, (int, float)):
                raise ValueError(f"only numbers are allowed as constants in {text!r}")
        elif isinstance(sub, ast.Name):
            if sub.id in _FUNCTIONS:
                if id(sub) not in called:
                    raise ValueError(f"{sub.id} must be called, as in {sub.id}(n), in {text!r}")
            elif sub.id != "n":
                raise ValueError(
                    f"unknown name {sub.id!r} in {text!r} (allowed: n, log, sqrt, exp)")
        elif isinstance(sub, ast.Call):
            if not (isinstance(sub.func, ast.Name) and sub.func.id in _FUNCTIONS):
                raise ValueError(f"only log, sqrt and exp may be called in {text!r}")
            if len(sub.args) != 1 or sub.keywords:
                raise ValueError(f"{sub.func.id}() takes exactly one argument in {text!r}")
        else:
            raise ValueError(f"{type(sub).__name__} not allowed in {text!r}")


def _evaluate(node, n):
    """Numeric value of a checked tree at width ``n``."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, n)
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(n)
    if isinstance(node, ast.UnaryOp):
        value = _evaluate(node.operand, n)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        value = _BINARY[type(node.op)](_evaluate(node.left, n), _evaluate(node.right, n))
        if isinstance(value, complex):
            raise ValueError("a negative number raised to a fractional power")
        return value
    return _FUNCTIONS[node.func.id](_evaluate(node.args[0], n))


def _monomial(node):
    """The tree as (coef, n_power, log_power) if it is exactly c·n^p·(log n)^l, else ``None``."""
    if isinstance(node, ast.Expression):
        return _monomial(node.body)
    if isinstance(node, ast.Constant):
        return (float(node.value), Fraction(0), Fraction(0))
    if isinstance(node, ast.Name):
        return (1.0, Fraction(1), Fraction(0))
    if isinstance(node, ast.UnaryOp):
        inner = _monomial(node.operand)
        if inner is None or isinstance(node.op, ast.UAdd):
            return inner
        return (-inner[0], inner[1], inner[2])
    if isinstance(node, ast.Call):
        inner = _monomial(node.args[0])
        if inner is None:
            return None
        coef, p, l = inner
        name = node.func.id
        if name == "sqrt":
            return _power(inner, Fraction(1, 2))
        if p == 0 and l == 0:
            if name == "log" and coef <= 0:
                return None
            return (_FUNCTIONS[name](coef), Fraction(0), Fraction(0))
        if name == "log" and coef == 1.0 and l == 0:
            return (float(p), Fraction(0), Fraction(1))    # log(n^p) = p log n
        return None
    left, right = _monomial(node.left), _monomial(node.right)
    if left is None or right is None:
        return None
    op = type(node.op)
    if op is ast.Mult:
        return (left[0] * right[0], left[1] + right[1], left[2] + right[2])
    if op is ast.Div:
        if right[0] == 0:
            return None
        return (left[0] / right[0], left[1] - right[1], left[2] - right[2])
    if op is ast.Pow:
        exponent = _exact_exponent(node.right, right[0])
        if right[1] or right[2] or exponent is None:
            return None
        return _power(left, exponent)
    # Addition/subtraction stays a monomial only for like terms.
    if (left[1], left[2]) != (right[1], right[2]):
        return None
    coef = left[0] + right[0] if op is ast.Add else left[0] - right[0]
    return (coef, left[1], left[2])


def _exact_exponent(node, value):
    """An exponent as an exact fraction, or ``None`` if it is not finite.

    Rational constant sub-expressions (``-(1/3)``, ``2/3*1``) are computed exactly, with
    literal decimals keeping their decimal value; others (``sqrt(2)``) use their float value.
    """
    exact = _exact_constant(node)
    if exact is not None:
        return exact
    return Fraction(repr(value)) if math.isfinite(value) else None


#: Largest size (in bits) of an exact integer power computed by :func:`_exact_constant`.
_MAX_EXACT_BITS = 4096


def _exact_constant(node):
    """The exact rational value of numbers combined by + - * / and integer powers, or ``None``."""
    if isinstance(node, ast.Constant):
        return Fraction(repr(node.value))
    if isinstance(node, ast.UnaryOp):
        value = _exact_constant(node.operand)
        if value is None or isinstance(node.op, ast.UAdd):
            return value
        return -value
    if not isinstance(node, ast.BinOp):
        return None
    left, right = _exact_constant(node.left), _exact_constant(node.right)
    if left is None or right is None:
        return None
    op = type(node.op)
    if op is ast.Div:
        return left / right if right else None
    if op is ast.Pow:
        size = max(left.numerator.bit_length(), left.denominator.bit_length())
        if right.denominator != 1 or (not left and right < 0) \
                or abs(right) * size > _MAX_EXACT_BITS:
            return None
        return left ** int(right)
    return {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}[op]


def _power(mono, exponent):
    coef, p, l = mono
    if coef < 0 and exponent.denominator != 1:
        return None
    return (coef ** float(exponent), p * exponent, l * exponent)


#: Deepest expression tree accepted (the evaluators recurse along it).
_MAX_DEPTH = 100


def _parse_one(text, name):
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name} expression must be a non-empty string, got {text!r}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"malformed {name} expression {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"{name} expression {text!r} is nested too deeply") from None
    _check_tree(tree, text)
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ValueError(f"{name} expression {text!r} is nested more than {_MAX_DEPTH} "
                             "levels deep")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return tree


def _monomial_form(tree, name, text):
    """:func:`_monomial` of a checked tree; arithmetic errors of its constants are ValueErrors."""
    try:
        mono = _monomial(tree)
    except ArithmeticError as exc:
        raise ValueError(f"{name} expression {text!r} cannot be evaluated: {exc}") from None
    if mono is not None and not (math.isfinite(mono[0]) and mono[0] > 0):
        raise ValueError(f"{name} expression {text!r} must be positive (coefficient {mono[0]:g})")
    return mono


class _ExpressionFunction:
    """A checked expression tree evaluated at n (picklable, no ``eval``)."""

    def __init__(self, text, tree):
        self.text = text
        self.tree = tree

    def __call__(self, n):
        return _evaluate(self.tree, n)

    def __reduce__(self):
        return (_expression_function, (self.text,))


def _expression_function(text):
    return _ExpressionFunction(text, _parse_one(text, "scaling"))


def parse_scaling(tau_expr, keep_expr):
    """Parse τ_n and q_n expressions in ``n`` into a :class:`Scaling`.

    Allowed: numbers, the width ``n``, ``+ - * / **``, unary minus and ``log``, ``sqrt``,
    ``exp``. Expressions of the exact form c·n^p·(log n)^l give a :class:`PowerLogScaling`
    with exact limit constants; anything else gives a :class:`CallableScaling` (numerical
    limits).

    Parameters
    ----------
    tau_expr : str
        The master learning rate τ_n, e.g. ``"0.5*n**-0.5"`` or ``"1/(n*log(n))"``.
    keep_expr : str
        The keep probability q_n, e.g. ``"0.7"`` or ``"1/n"`` (clipped to 1 from above).

    Raises
    ------
    ValueError
        For malformed expressions, names or functions outside the whitelist, or
        non-positive values.
    """
    tau_tree = _parse_one(tau_expr, "tau")
    keep_tree = _parse_one(keep_expr, "keep")
    label = f"τ={tau_expr.strip()}, q={keep_expr.strip()}"
    tau_mono = _monomial_form(tau_tree, "tau", tau_expr)
    keep_mono = _monomial_form(keep_tree, "keep", keep_expr)
    if tau_mono is not None and keep_mono is not None:
        return PowerLogScaling(PowerLog(*tau_mono), PowerLog(*keep_mono), label=label)
    scaling = CallableScaling(_ExpressionFunction(tau_expr.strip(), tau_tree),
                              _ExpressionFunction(keep_expr.strip(), keep_tree), label=label)
    for n in (2, 10, 1000):       # fail early on expressions that are not positive
        scaling.tau(n)
        scaling.keep(n)
    return scaling
