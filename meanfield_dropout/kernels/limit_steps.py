"""Kernels of the limit dynamics (:mod:`meanfield_dropout.limits`): the mean-field flow's Heun
step and the rings of the jump limits, compositions of :mod:`.core`'s and :mod:`.rows`'s kernels
with no network arithmetic of their own.

The data and architecture come as one struct ``data`` with the fields of
:class:`~meanfield_dropout.kernels.structs.NetworkData` (``inputs`` Z (m, d), ``inputs_t`` Zᵀ,
``targets`` y (K, m), ``bias``, ``activation`` code); ``bounds`` is the pair (output bound,
parameter bound) of :func:`~meanfield_dropout.engine_plan.divergence_bounds`.
"""
from typing import NamedTuple

import numpy as np
from numba import njit

from .core import LOSSES, _backward_step, _forward_sums, _loss_derivative
from .rows import _row_features_kept, _row_step_activated
from .structs import Kept, Rows, Update, Weights
from .variants import _within


#: The limits are those of the square loss.
_SQUARE = LOSSES["square"]


class FlowScratch(NamedTuple):
    """Scratch of a flow step: ``rows`` = arange(N), ``pre`` (N, m), ``f`` and ``residual``
    (K, m)."""

    rows: np.ndarray
    pre: np.ndarray
    f: np.ndarray
    residual: np.ndarray


class RingState(NamedTuple):
    """The cloud as the rings keep it up to date: ``value`` and ``deriv`` (N, m) = σ(u) and
    σ'(u) at the pre-activations u of X_i, ``features`` (N, K, m) = φ(X_i), ``f`` (K, m) =
    their mean f_μ."""

    value: np.ndarray
    deriv: np.ndarray
    features: np.ndarray
    f: np.ndarray


class Rings(NamedTuple):
    """A batch of rings: the ringing particles ``who`` (in order) and, for ``critical``, each
    ring's partner count ``partner_counts`` and the partners ``partners`` (indices into the
    current cloud, ring after ring)."""

    who: np.ndarray
    partner_counts: np.ndarray
    partners: np.ndarray


@njit(cache=True)
def _copy(source, out):
    """out = source, entry by entry (arrays of one shape): a slice assignment would compile
    its shape check's formatted error message, a second or more per kernel chain."""
    for index in np.ndindex(source.shape):
        out[index] = source[index]


@njit(cache=True)
def _flow_step(source, out, dt, penalty, data, scratch, work):
    """out_i ← out_i − dt Dφ(source_i)ᵀ (r_μ + penalty φ(source_i)/m) for every particle.

    The engine's ``gd``/``penalized`` step of master learning rate ``dt`` and output scale
    1/N, with r_μ = (f_μ(source) − y)/m; ``out`` is ``source`` (in place) or a copy of it.
    ``scratch`` is a :class:`FlowScratch`, ``work`` the run's
    :class:`~meanfield_dropout.kernels.blocks.Workspace`.
    """
    n = source.shape[0]
    rows, pre, f, residual = scratch
    kept = Kept(pre, np.empty((0, 0), dtype=np.uint8), rows)
    _forward_sums(source, data, Rows(rows, n), Weights(1.0, 1.0 / n, n), kept, f, f[:, :0],
                  work)
    _loss_derivative(_SQUARE, f, data.targets, residual)
    _backward_step(source, data, Rows(rows, n), Update(dt, penalty, residual), kept, out, work)


@njit(cache=True)
def _heun(X, data, penalty, dt, steps, bounds, work):
    """Advance X in place by ``steps`` Heun steps X ← ½(X + E(E(X))).

    E is :func:`_flow_step`. Returns −1, or the number of steps after which X left its range:
    an entry not finite or above the parameter bound in absolute value, or a predictor f_μ
    (computed by every step's first drift) above the output bound. X is then the state after
    one more step.
    """
    output_bound, parameter_bound = bounds
    n, m, K = X.shape[0], data.inputs_t.shape[1], data.targets.shape[0]
    scratch = FlowScratch(np.arange(n), np.empty((n, m)), np.empty((K, m)), np.empty((K, m)))
    trial = np.empty_like(X)
    for k in range(steps):
        _copy(X, trial)
        _flow_step(X, trial, dt, penalty, data, scratch, work)
        if not _within(scratch.f, output_bound):
            return k
        _flow_step(trial, trial, dt, penalty, data, scratch, work)
        X += trial
        X *= 0.5
        if not _within(X, parameter_bound):
            return k + 1
    return -1


@njit(cache=True)
def _jump_events(X, state, data, alpha, beta, rings, bounds, jumps):
    """Process the :class:`Rings` ``rings`` of the superposed clock.

    A ring of particle i is the one-row step X_i ← X_i − α Dφ(X_i)ᵀ r with r = (f − y)/m for
    the Poisson jump (``beta == 0``) and, for ``critical`` (``beta > 0``), r = (β(φ(X_i) +
    Σ_l φ(Y_l)) − y)/m over the ring's partners Y_l. The :class:`RingState` ``state`` is kept
    up to date (so a ring computes one product with the data for its gradient, one for its
    new features and one activation); ``jumps`` counts rings per particle. Returns the index
    of the first ring after which X_i leaves the parameter bound or f leaves the output bound
    (either not finite), or −1.
    """
    output_bound, parameter_bound = bounds
    value, deriv, features, f = state
    who, partner_counts, partners = rings
    y = data.targets
    n = X.shape[0]
    K, m = f.shape
    scale = 1.0 / n
    forward, residual, new = np.empty((K, m)), np.empty((K, m)), np.empty((K, m))
    pre, grad_pre, scratch, grad_a = np.empty(m), np.empty(m), np.empty(m), np.empty(K)
    cursor = 0
    for e in range(who.shape[0]):
        i = who[e]
        if beta == 0.0:
            _loss_derivative(_SQUARE, f, y, residual)
        else:
            _copy(features[i], forward)
            for l in range(partner_counts[e]):
                forward += features[partners[cursor + l]]
            cursor += partner_counts[e]
            forward *= beta
            _loss_derivative(_SQUARE, forward, y, residual)
        _copy(deriv[i], grad_pre)
        _row_step_activated(X, i, data, Update(alpha, 0.0, residual), value[i], grad_pre,
                            scratch, grad_a, X)
        if not _within(X[i], parameter_bound):
            return e
        _row_features_kept(X, i, data, pre, value[i], deriv[i], new)
        for c in range(K):
            for j in range(m):
                f[c, j] += scale * (new[c, j] - features[i, c, j])
                features[i, c, j] = new[c, j]
                if not abs(f[c, j]) <= output_bound:
                    return e
        jumps[i] += 1
    return -1
