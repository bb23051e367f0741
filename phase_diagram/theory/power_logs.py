"""Power-log sequences c·n^p·(log n)^l: the plain power laws of the phase diagram.

:func:`power_log_form` recognises such a sequence in a SymPy expression (exact rational
exponents), and :class:`PowerLog` describes one; :class:`~phase_diagram.theory.scalings.
PowerLogScaling` keeps these descriptions beside its expressions. The limits themselves are
computed by SymPy like those of any expression.
"""
import math
from dataclasses import dataclass
from fractions import Fraction

import sympy

from .expressions import WIDTH

__all__ = ["PowerLog", "power_log_form"]


@dataclass(frozen=True)
class PowerLog:
    """The positive sequence ``coef * n**n_power * log(n)**log_power`` (a description).

    Parameters
    ----------
    coef : float
        The constant factor (> 0).
    n_power, log_power : Fraction
        Exponents of n and of log n (exact rationals).
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

    def source(self):
        """The sequence as an expression for :func:`parse_expression` (exact exponents)."""
        return f"{self.coef!r}*n**({self.n_power})*log(n)**({self.log_power})"

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


def power_log_form(expr):
    """``expr`` as a :class:`PowerLog` if it is exactly c·n^p·(log n)^l with c > 0, else None."""
    coef, n_power, log_power = sympy.Integer(1), sympy.Integer(0), sympy.Integer(0)
    for factor in sympy.Mul.make_args(expr):
        base, exponent = factor.as_base_exp()
        if base == WIDTH and exponent.is_Rational:
            n_power += exponent
        elif base == sympy.log(WIDTH) and exponent.is_Rational:
            log_power += exponent
        elif factor.is_number:
            coef *= factor
        else:
            return None
    if not coef.is_positive:
        return None
    return PowerLog(float(coef), Fraction(int(n_power.p), int(n_power.q)),
                    Fraction(int(log_power.p), int(log_power.q)))
