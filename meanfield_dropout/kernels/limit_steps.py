"""Kernels of the limit dynamics (:mod:`meanfield_dropout.limits`): the mean-field flow's Heun
step and the rings of the jump limits, compositions of :mod:`.core`'s and :mod:`.rows`'s kernels
with no network arithmetic of their own."""
import numpy as np
from numba import njit

from .core import LOSSES, _backward_step, _forward_sums, _loss_derivative
from .rows import _row_features_kept, _row_step_activated
from .variants import _within


#: The limits are those of the square loss.
_SQUARE = LOSSES["square"]


@njit(cache=True)
def _flow_step(source, out, dt, penalty, Z, Zt, y, has_bias, act, rows, pre, f, residual,
               work):
    """out_i ← out_i − dt Dφ(source_i)ᵀ (r_μ + penalty φ(source_i)/m) for every particle.

    The engine's ``gd``/``penalized`` step of master learning rate ``dt`` and output scale
    1/N, with r_μ = (f_μ(source) − y)/m; ``out`` is ``source`` (in place) or a copy of it.
    ``rows`` = arange(N); ``pre`` (N, m), ``f`` and ``residual`` (K, m) are scratch, ``work``
    the run's :class:`~meanfield_dropout.kernels.blocks.Workspace`.
    """
    n, K = source.shape[0], y.shape[0]
    no_signs = np.empty((0, 0), dtype=np.uint8)
    _forward_sums(source, rows, n, 1.0, 1.0 / n, Zt, K, has_bias, act, pre, f, f[:, :0],
                  work, no_signs, n)
    _loss_derivative(_SQUARE, f, y, residual)
    _backward_step(source, rows, n, dt, penalty, residual, Z, Zt, K, has_bias, act, pre,
                   no_signs, rows, out, work)


@njit(cache=True)
def _heun(X, Z, Zt, y, has_bias, act, penalty, dt, steps, output_bound, parameter_bound,
          work):
    """Advance X in place by ``steps`` Heun steps X ← ½(X + E(E(X))).

    E is :func:`_flow_step`; ``y`` is (K, m), ``Z`` (m, d) and ``Zt`` its transpose. Returns
    −1, or the number of steps after which X left its range: an entry not finite or above
    ``parameter_bound`` in absolute value, or a predictor f_μ (computed by every step's first
    drift) above ``output_bound``. X is then the state after one more step.
    """
    n, m = X.shape[0], Zt.shape[1]
    rows, pre, trial = np.arange(n), np.empty((n, m)), np.empty_like(X)
    f, residual = np.empty((y.shape[0], m)), np.empty((y.shape[0], m))
    for k in range(steps):
        trial[:] = X
        _flow_step(X, trial, dt, penalty, Z, Zt, y, has_bias, act, rows, pre, f, residual, work)
        if not _within(f, output_bound):
            return k
        _flow_step(trial, trial, dt, penalty, Z, Zt, y, has_bias, act, rows, pre, f, residual,
                   work)
        X += trial
        X *= 0.5
        if not _within(X, parameter_bound):
            return k + 1
    return -1


@njit(cache=True)
def _jump_events(X, value, deriv, features, f, Zt, y, has_bias, act, alpha, beta, who,
                 partner_counts, partners, output_bound, parameter_bound, jumps):
    """Process the rings ``who`` (particle indices, in order) of the superposed clock.

    A ring of particle i is the one-row step X_i ← X_i − α Dφ(X_i)ᵀ r with r = (f − y)/m for
    the Poisson jump (``beta == 0``) and, for ``critical`` (``beta > 0``), r = (β(φ(X_i) +
    Σ_l φ(Y_l)) − y)/m over the ``partner_counts[e]`` partners ``partners[...]`` (indices into
    the current cloud). ``value`` and ``deriv`` (N, m) = σ(u) and σ'(u) at the pre-activations
    u of X_i, ``features`` (N, K, m) = φ(X_i) and ``f`` (K, m) = their mean are kept up to
    date (so a ring computes one product with the data for its gradient, one for its new
    features and one activation); ``jumps`` counts rings per
    particle. Returns the index of the first ring after which X_i leaves ``parameter_bound``
    or f leaves ``output_bound`` (either not finite), or −1.
    """
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
            forward[:] = features[i]
            for l in range(partner_counts[e]):
                forward += features[partners[cursor + l]]
            cursor += partner_counts[e]
            forward *= beta
            _loss_derivative(_SQUARE, forward, y, residual)
        grad_pre[:] = deriv[i]
        _row_step_activated(X, i, value[i], grad_pre, alpha, 0.0, residual, Zt, K, has_bias,
                            scratch, grad_a, X)
        if not _within(X[i], parameter_bound):
            return e
        _row_features_kept(X, i, Zt, K, has_bias, act, pre, value[i], deriv[i], new)
        for c in range(K):
            for j in range(m):
                f[c, j] += scale * (new[c, j] - features[i, c, j])
                features[i, c, j] = new[c, j]
                if not abs(f[c, j]) <= output_bound:
                    return e
        jumps[i] += 1
    return -1
