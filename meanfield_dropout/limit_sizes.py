"""Checks of a limit run before it starts: its constants (:class:`LimitConstants`), its
output times, its coupling to dropout's clock, its memory, checked against the share of memory
a run may use (:func:`meanfield_dropout.runtime.memory.check_memory`), and its work, announced
when large (:func:`meanfield_dropout.runtime.memory.warn_long_run`); the batch sizes of the
event-driven limits that bound their scratch.
"""
import math
from typing import NamedTuple

import numpy as np

from .runtime.memory import NOMINAL_RATE, check_memory, warn_long_run
from .validation import check_array, check_choice, check_positive

#: The five limits and the constants each needs (α, β, τ; see :func:`limit_constants`).
LIMIT_CONSTANTS = {"wgf": (), "penalized-wgf": ("beta",), "jump-poisson": ("alpha",),
                   "jump-bernoulli": ("alpha", "tau"), "critical": ("alpha", "beta")}
LIMITS = tuple(LIMIT_CONSTANTS)


class LimitConstants(NamedTuple):
    """The constants of the limit dynamics, as given (each limit checks those it needs:
    :func:`limit_constants`).

    Attributes
    ----------
    alpha : float or None
        α = lim τ_n/q_n, the jump size (``jump-poisson``, ``jump-bernoulli``, ``critical``).
    beta : float or None
        β = lim (1 − q_n)/(n q_n) (``penalized-wgf``, ``critical``).
    tau : float or None
        τ = lim τ_n, the step of ``jump-bernoulli``.
    """

    alpha: float | None = None
    beta: float | None = None
    tau: float | None = None


def limit_constants(limit, alpha=None, beta=None, tau=None):
    """Validate the constants a limit needs; return them as a dict of floats.

    ``wgf`` needs none; ``penalized-wgf`` needs β ∈ (0, ∞); ``jump-poisson`` α ∈ (0, ∞);
    ``jump-bernoulli`` τ ∈ (0, ∞) and α ∈ [τ, ∞) (so q = τ/α ∈ (0, 1]); ``critical`` α, β ∈
    (0, ∞). Constants a limit does not use are ignored.

    Raises
    ------
    ValueError
        Naming the constant (``alpha``, ``beta`` or ``tau``) that is missing or out of range.
    """
    check_choice(limit, "limit", LIMITS)
    given = dict(alpha=alpha, beta=beta, tau=tau)
    out = {"alpha": 0.0, "beta": 0.0, "tau": 0.0}
    for name in LIMIT_CONSTANTS[limit]:
        if given[name] is None:
            raise ValueError(f"limit {limit!r} needs {name} (a finite number > 0)")
        out[name] = check_positive(given[name], name)
    if limit == "jump-bernoulli" and out["alpha"] < out["tau"]:
        raise ValueError(f"alpha must be >= tau for jump-bernoulli (keep probability "
                         f"q = tau/alpha in (0, 1]), got alpha={out['alpha']!r}, "
                         f"tau={out['tau']!r}")
    return out


#: Largest number of Poisson rings drawn and processed in one kernel call.
_EVENT_BATCH = 1 << 20
#: Most partner indices of ``critical`` drawn at once (about 1/β per ring).
_PARTNER_BATCH = 1 << 22


def check_times(times):
    """The output times as an array: non-empty, non-decreasing, ≥ 0."""
    times = check_array(times, "times", 1)
    if times.size == 0 or times[0] < 0 or np.any(np.diff(times) < 0):
        raise ValueError("times must be a non-empty, non-decreasing sequence of numbers >= 0")
    return times


def check_clock(clock, limit, times):
    """Check that a :class:`~meanfield_dropout.limits.DropoutClock` can drive ``limit`` at
    ``times`` (multiples of its master learning rate τ); returns its record."""
    if limit not in ("jump-poisson", "critical"):
        raise ValueError(f"clock couples the jump-poisson and critical limits only, not "
                         f"{limit!r}")
    lr = check_positive(clock.master_lr, "clock master_lr")
    if np.any(np.abs(times / lr - np.rint(times / lr)) > 1e-6):
        raise ValueError("with clock, times must be multiples of the clock's master_lr")
    return dict(seed=int(clock.seed), master_lr=lr)


def heun_steps(times, dt):
    """Heun steps of each grid interval: the fewest of length ≤ dt that divide it."""
    gaps = np.diff(times, prepend=0.0)
    return np.where(gaps > 0, np.ceil(gaps / dt - 1e-9), 0.0)


def check_limit_size(limit, shape, m, times, constants, dt):
    """Refuse a limit run that would not fit in memory; warn when its work is large.

    Memory: the snapshots (T, N, p), and the scratch of the integrator: (N, m) pre-activations
    and the kernels' workspace for a flow; σ and σ' at the pre-activations and the features
    φ(X_i), (N, m) each, and a batch of rings (and, for ``critical``, of their about 1/β
    partners each) for the event-driven limits. Work: a Heun step is two drifts of about
    6 N m p operations; a ring about 4 m p, plus m per partner; seconds are operations at
    :data:`~meanfield_dropout.runtime.memory.NOMINAL_RATE`.
    """
    n, p = shape
    snapshots = 8.0 * times.size * n * p
    if limit in ("wgf", "penalized-wgf"):
        steps = float(heun_steps(times, dt).sum())
        check_memory(snapshots + 8.0 * n * (m + 3 * p) + 8.0 * 6 * m * n,
                     f"limit {limit!r} with {n} particles and {times.size} snapshot(s)",
                     "use fewer particles or output times")
        warn_long_run(12.0 * n * m * p * steps / NOMINAL_RATE,
                      f"limit {limit!r} ({steps:.3g} Heun steps of {n} particles)",
                      "use a larger dt, fewer particles or a shorter time")
        return
    if limit == "jump-bernoulli":       # the engine checks the memory of its own run
        steps = float(times[-1]) / constants["tau"]
        warn_long_run(6.0 * n * m * p * steps / NOMINAL_RATE,
                      f"limit 'jump-bernoulli' ({steps:.3g} steps of {n} particles)",
                      "use fewer particles or a shorter time")
        return
    alpha, beta = constants["alpha"], constants["beta"]
    rings = n * float(times[-1]) / alpha
    partners = 1.0 / beta if beta > 0 else 0.0
    per_ring = partners + 6.0 * math.sqrt(partners)    # a ring's draw, six deviations up
    check_memory(snapshots + 24.0 * n * m + 16.0 * _EVENT_BATCH
                 + 8.0 * max(per_ring, min(_PARTNER_BATCH, rings * partners)),
                 f"limit {limit!r} with {n} particles, {times.size} snapshot(s)"
                 + (f" and about {partners:.3g} partners per ring (1/beta)" if beta else ""),
                 "use a larger beta" if per_ring > _PARTNER_BATCH else
                 "use fewer particles or output times")
    warn_long_run(rings * m * (4.0 * p + partners) / NOMINAL_RATE,
                  f"limit {limit!r} (about {rings:.3g} rings of the superposed clock of rate "
                  f"N/alpha)", "use fewer particles, a shorter time or a larger alpha")
