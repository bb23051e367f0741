"""Classify a hyperparameter scaling into the phases of the dropout phase diagram.

The phase is decided by the limit constants α = lim τ_n/q_n, β = lim (1 − q_n)/(n q_n) and
τ_∞ = lim τ_n (Chizat, Marion & Yesbay 2025, §3), not by the simplex point: one point of the simplex (e.g. the vertex
(1, 0, 0)) can hold several phases.

====================  =====================================================
phase                 condition
====================  =====================================================
``wgf``               α = 0, β = 0
``penalized-wgf``     α = 0, β ∈ (0, ∞)
``jump-poisson``      α ∈ (0, ∞), β = 0, τ_∞ = 0
``jump-bernoulli``    τ_∞ > 0 and q_∞ ∈ (0, 1] (so α = τ_∞/q_∞ finite, β = 0)
``critical``          α, β ∈ (0, ∞)
``degenerate``        α = ∞ or β = ∞
====================  =====================================================

The phase names are shared with the limit-dynamics module ``meanfield_dropout.limits``.
"""
from dataclasses import dataclass

import numpy as np

from .constants import exact_text
from .scalings import LimitConstants, Scaling

__all__ = ["PHASES", "DEGENERATE", "UNDETERMINED", "Regime", "classify"]

#: The five non-degenerate phases, in the order of the notes' table (§3.3).
PHASES = ("wgf", "penalized-wgf", "jump-poisson", "jump-bernoulli", "critical")
DEGENERATE = "degenerate"
#: Returned when a constant cannot be decided, exactly or numerically (the reason says why).
UNDETERMINED = "undetermined"


@dataclass(frozen=True)
class Regime:
    """The phase of a scaling with the constants that decided it.

    Attributes
    ----------
    phase : str
        One of :data:`PHASES`, ``"degenerate"`` or ``"undetermined"``.
    constants : LimitConstants
        α, β, τ_∞ and q_∞ (exact values in ``constants.exact`` when SymPy found them).
    simplex_limit : numpy.ndarray or None
        lim (log n, −log τ_n, −log q_n)/S_n, or None when it does not exist.
    reason : str
        Why the phase was chosen (for degenerate: whether α = ∞, β = ∞ or both; for
        undetermined: which constant is unknown and why).
    label : str
        The scaling's display name.
    simplex_exact : tuple or None
        The simplex limit as exact SymPy numbers, when known.
    simplex_error : float or None
        The largest uncertainty of a numeric simplex limit's coordinates (0 when exact).
    """

    phase: str
    constants: LimitConstants
    simplex_limit: np.ndarray | None
    reason: str
    label: str = ""
    simplex_exact: tuple | None = None
    simplex_error: float | None = None

    @property
    def degenerate_causes(self):
        """The constants that are infinite, e.g. ``("alpha",)``; empty unless degenerate."""
        c = self.constants
        return tuple(name for name in ("alpha", "beta") if c.kind(name) == "infinite")

    def limit_config(self):
        """Keyword arguments selecting the matching limit dynamics.

        Returns
        -------
        dict
            ``dict(limit=phase, alpha=α, beta=β, tau=τ_∞)``; for ``jump-bernoulli`` the keep
            probability of the limit is q = τ/α.

        Raises
        ------
        ValueError
            For degenerate or undetermined regimes, which have no limit dynamics.
        """
        if self.phase not in PHASES:
            raise ValueError(f"no limit dynamics for a {self.phase} scaling ({self.reason})")
        c = self.constants
        return dict(limit=self.phase, alpha=float(c.alpha), beta=float(c.beta), tau=float(c.tau))

    def summary(self):
        """Multi-line human-readable description (used by the CLI)."""
        c = self.constants
        floats = None if self.simplex_limit is None else \
            "(" + ", ".join(f"{u:.4f}" for u in self.simplex_limit) + ")"
        exact = [] if self.simplex_exact is None else [exact_text(u) for u in self.simplex_exact]
        if exact and None not in exact:
            point = "(" + ", ".join(exact) + ")"
            if not all(u.is_Integer for u in self.simplex_exact):
                point += f" = {floats}"
        elif floats is not None:
            point = floats if exact else floats + (
                f" +- {self.simplex_error:.2g} (numeric)" if self.simplex_error
                else " (numeric)")
        else:
            point = "undefined"
        lines = [
            f"scaling: {self.label}",
            f"phase: {self.phase}",
            f"reason: {self.reason}",
            f"alpha = lim tau_n/q_n = {c.text('alpha')}",
            f"beta = lim (1-q_n)/(n q_n) = {c.text('beta')}",
            f"tau_inf = lim tau_n = {c.text('tau')}",
            f"q_inf = lim q_n = {c.text('keep')}",
            f"simplex limit (log n, -log tau, -log q)/S = {point}",
        ]
        return "\n".join(lines + [f"note: {note}" for note in c.notes])


def _phase_of(c):
    """(phase, reason) from determined limit constants."""
    inf = [name for name in ("alpha", "beta") if c.kind(name) == "infinite"]
    if inf:
        return DEGENERATE, " and ".join(f"{name} = inf" for name in inf)
    if c.kind("tau") == "positive":
        # α finite with τ_∞ > 0 forces q_∞ = τ_∞/α > 0, hence β = 0.
        return "jump-bernoulli", (f"tau_inf = {c.text('tau')} > 0 and "
                                  f"q_inf = {c.text('keep')} > 0")
    if c.kind("alpha") == "zero":
        if c.kind("beta") == "zero":
            return "wgf", "alpha = 0 and beta = 0"
        return "penalized-wgf", f"alpha = 0 and beta = {c.text('beta')} in (0, inf)"
    if c.kind("beta") == "zero":
        return "jump-poisson", f"alpha = {c.text('alpha')} in (0, inf), beta = 0, tau_inf = 0"
    return "critical", f"alpha = {c.text('alpha')} and beta = {c.text('beta')} in (0, inf)"


def classify(scaling):
    """The :class:`Regime` of a scaling, decided by its limit constants (Chizat, Marion & Yesbay 2025, §3).

    Parameters
    ----------
    scaling : Scaling
        E.g. from :func:`~phase_diagram.theory.scalings.power_law` or
        :func:`~phase_diagram.theory.scalings.parse_scaling`.

    Returns
    -------
    Regime
        Phase ``"undetermined"`` when a constant (or the sign of an expression for large n)
        could not be decided, exactly or numerically; the reason says which and why.
    """
    if not isinstance(scaling, Scaling):
        raise ValueError(f"scaling must be a Scaling, got {type(scaling).__name__}")
    c = scaling.constants()
    simplex = dict(simplex_limit=scaling.simplex_limit(), label=scaling.label,
                   simplex_exact=scaling.simplex_limit_exact(),
                   simplex_error=scaling.simplex_limit_error())
    if not c.determined:
        missing = [name for name in ("alpha", "beta", "tau", "keep") if getattr(c, name) is None]
        why = [f"the limit of {', '.join(missing)} is undetermined"] if missing else []
        why += [f"{name} = {c.text(name)} cannot be told from 0" for name in c.ambiguous()]
        details = "; ".join(why + list(c.undecided)) or "the limits do not settle numerically"
        return Regime(UNDETERMINED, c, reason=details, **simplex)
    phase, reason = _phase_of(c)
    numeric = [name for name in ("alpha", "beta", "tau", "keep")
               if c.exact[("alpha", "beta", "tau", "keep").index(name)] is None]
    if numeric and c.exact != (None, None, None, None):
        reason += f" ({', '.join(numeric)} numeric: SymPy did not decide)"
    return Regime(phase, c, reason=reason, **simplex)
