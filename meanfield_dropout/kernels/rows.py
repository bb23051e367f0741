"""One-neuron kernels of the jump limits: the features and the masked-row step of a single row.

A ring of the Poisson or Bernoulli jump limit (:mod:`meanfield_dropout.limits`) moves one
neuron at a time, too little work for BLAS, so these kernels do the products with the data
as plain loops. The arithmetic of the step is the core's
(:func:`~meanfield_dropout.kernels.core._coefficients`) and φ(x_i, z) = a_i σ(w_i·z + b_i) is the
network of :mod:`meanfield_dropout.kernels.core`, so a ring and a row of the blocked step give the
same numbers to rounding.
"""
import numpy as np
from numba import njit

from .activations import _activate_row
from .core import _coefficients


@njit(cache=True, inline="always")
def _row_pre_activations(X, i, Zt, K, has_bias, pre):
    """pre_j = w_i·z_j (+ b_i) for one neuron, by plain loops over the data."""
    d, batch = Zt.shape
    bias = X[i, K + d] if has_bias else 0.0
    for j in range(batch):
        pre[j] = bias
    for c in range(d):
        w = X[i, K + c]
        for j in range(batch):
            pre[j] += w * Zt[c, j]


@njit(cache=True, fastmath={"reassoc"})
def _row_step_activated(X, i, net, update, value, grad_pre, scratch, grad_a, out):
    """One-row masked step: out_i ← out_i − step · Dφ(x_i)ᵀ e_i for the single neuron i.

    The same arithmetic as one row of :func:`~meanfield_dropout.kernels.core._backward_update`,
    with the products with the data as plain loops (one row is too small for BLAS), on the
    data ``net`` (a :class:`~meanfield_dropout.kernels.structs.NetworkData`) with the
    :class:`~meanfield_dropout.kernels.structs.Update` ``update`` (step, penalty, residual),
    from neuron i's σ(u) in ``value`` (read) and σ'(u) in ``grad_pre`` (overwritten), as the
    jump limits keep them (:func:`_row_features_kept`). ``scratch`` (B,) and ``grad_a`` (K,)
    are scratch (so a loop of rings allocates nothing) and must not alias anything else.
    """
    Zt, K, has_bias = net.inputs_t, net.outputs, net.bias
    step, penalty, residual = update
    d, batch = Zt.shape
    grad_b = _coefficients(value, grad_pre, X[i, :K], penalty, residual, scratch, grad_a)
    for c in range(d):
        acc = 0.0
        for j in range(batch):
            acc += grad_pre[j] * Zt[c, j]
        out[i, K + c] -= step * acc
    for c in range(K):
        out[i, c] -= step * grad_a[c]
    if has_bias:
        out[i, K + d] -= step * grad_b


@njit(cache=True)
def _row_features(X, i, net, pre, out):
    """out (K, B) = φ(x_i, z_j) = a_i σ(w_i·z_j + b_i) for the single neuron i on the inputs
    of ``net`` (a :class:`~meanfield_dropout.kernels.structs.NetworkData`)."""
    _row_features_kept(X, i, net, pre, out[0], pre[:0], out)


@njit(cache=True)
def _row_features_kept(X, i, net, pre, value, deriv, out):
    """:func:`_row_features` that also leaves σ(u) in ``value`` and, if ``deriv`` is not
    empty, σ'(u) there (the same numbers as the activation of
    :func:`~meanfield_dropout.kernels.core._row_coefficients` at the same parameters). ``value`` may
    be ``out[0]``: that row is written last."""
    Zt = net.inputs_t
    _row_pre_activations(X, i, Zt, net.outputs, net.bias, pre)
    _activate_row(net.activation, pre, value, deriv)
    for c in range(net.outputs - 1, -1, -1):
        for j in range(Zt.shape[1]):
            out[c, j] = X[i, c] * value[j]


@njit(cache=True)
def _all_features(X, net, value=None, deriv=None):
    """φ(x_i, z_j) for every neuron on the inputs of ``net`` (a
    :class:`~meanfield_dropout.kernels.structs.NetworkData`), shape (n, K, B); with ``value``
    and ``deriv`` (n, B), each neuron's σ(u) and σ'(u) are left there (as the jump limits
    keep them)."""
    n, batch = X.shape[0], net.inputs_t.shape[1]
    out = np.empty((n, net.outputs, batch), dtype=X.dtype)
    pre = np.empty(batch, dtype=X.dtype)
    if value is None:
        for i in range(n):
            _row_features(X, i, net, pre, out[i])
    else:
        for i in range(n):
            _row_features_kept(X, i, net, pre, value[i], deriv[i], out[i])
    return out
