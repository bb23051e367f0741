"""Second-order kernels of the network of :mod:`meanfield_dropout.kernels.core`.

Jacobian-transpose products with a residual per neuron (the covariance of the dropout noise
and the SME steps of Zhang, Li, Luo & Xu 2024) and exact Hessian–vector products of the loss
(the sharpness of the mean-field network, Chizat, Marion & Yesbay 2025, and the Hessian of
the SME paper's modified loss). They reuse the first-order kernels of :mod:`.core` (the row
coefficients, the blocked pre-activations) and follow its layout and block order.
"""
import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .activations import _d2sigma, _dsigma, _sigma
from .blocks import BLOCK, Gradients, _apply_block, _gather_pre_activations
from .core import _loss_derivative, _row_coefficients, _softmax_numerators


@njit(cache=True, fastmath={"reassoc"})
def _jacobian_transpose_block(X, net, rows, step, residuals, kept, out, blk):
    """Block ``blk`` of :func:`_jacobian_transpose`: the neurons rows.index[blk·BLOCK:][:BLOCK]."""
    Z, Zt, K, has_bias, act = net.inputs, net.inputs_t, net.outputs, net.bias, net.activation
    pre, pre_index = kept.pre, kept.index
    d, batch = Zt.shape
    start = blk * BLOCK
    k = min(BLOCK, rows.count - start)
    recompute = pre_index.shape[0] == 0
    gathered = np.empty((BLOCK, d), dtype=X.dtype)
    block_pre = np.empty((BLOCK, batch), dtype=X.dtype)
    value = np.empty(batch, dtype=X.dtype)
    scratch = np.empty(batch, dtype=X.dtype)
    grad_pre = np.empty((BLOCK, batch), dtype=X.dtype)
    grad_a = np.empty((BLOCK, K), dtype=X.dtype)
    grad_b = np.empty(BLOCK, dtype=X.dtype)
    grad_w = np.empty((BLOCK, d), dtype=X.dtype)
    if recompute:
        _gather_pre_activations(X, net, rows.index, start, k, gathered, block_pre)
    for r in range(k):
        i = rows.index[start + r]
        row = block_pre[r] if recompute else pre[pre_index[start + r]]
        grad_b[r] = _row_coefficients(act, row, value, grad_pre[r], X[i, :K], 0.0,
                                      residuals[i], scratch, grad_a[r])
    np.dot(grad_pre[:k], Z, grad_w[:k])
    _apply_block(out, rows.index, start, k, step, Gradients(grad_a, grad_w, grad_b), has_bias)


@njit(cache=True, parallel=True)
def _jacobian_transpose(X, net, rows, step, residuals, kept, out):
    """Per-neuron residuals: out_i ← out_i − step · Dφ(x_i)ᵀ residuals[i] for
    i = rows.index[r], r < rows.count.

    :func:`~meanfield_dropout.kernels.core._backward_update` with penalty 0, except that
    neuron i has its own residual ``residuals[i]`` of shape (K, B) (``residuals`` has shape
    (n, K, B)): e.g. the pseudo-residuals whose back-propagation is one draw of the
    dropout-noise Gaussian of Zhang, Li, Luo & Xu (2024). ``net``, ``rows`` and ``kept`` as
    in :func:`~meanfield_dropout.kernels.core._backward_update` (the signs of ``kept`` are
    not read). A single block runs without launching a parallel region.
    """
    blocks = (rows.count + BLOCK - 1) // BLOCK
    if blocks == 1:
        _jacobian_transpose_block(X, net, rows, step, residuals, kept, out, np.int64(0))
        return
    for blk in prange(blocks):
        _jacobian_transpose_block(X, net, rows, step, residuals, kept, out, np.int64(blk))


@njit(cache=True)
def _loss_curvature(loss, f, y, df, out):
    """out = (∂²(batch-mean loss)/∂f²) df per data column, shape (K, B), carrying the 1/B.

    The Hessian in f of one column is I (square), y² p(1 − p) with p = 1/(1 + e^{−yf})
    (logistic) or diag(π) − ππᵀ with π = softmax(f) (softmax cross-entropy).
    """
    K, batch = f.shape
    for j in range(batch):
        if loss == 0:
            for c in range(K):
                out[c, j] = df[c, j] / batch
        elif loss == 1:
            p = 1.0 / (1.0 + math.exp(-y[0, j] * f[0, j]))
            out[0, j] = y[0, j] * y[0, j] * p * (1.0 - p) * df[0, j] / batch
        else:
            total = _softmax_numerators(f, j, out)
            mean = 0.0
            for c in range(K):
                out[c, j] /= total
                mean += out[c, j] * df[c, j]
            for c in range(K):
                out[c, j] = out[c, j] * (df[c, j] - mean) / batch


class HvpBlock(NamedTuple):
    """A block of neurons of a Hessian–vector product, with the pre-activations it needs."""

    start: int              # its first neuron
    count: int              # k, its number of neurons start..start + k − 1
    pre: np.ndarray         # (k, B) u_ij = w_i·z_j + b_i, of X
    tau: np.ndarray         # (k, B) τ_ij = β_i·z_j + γ_i, of the direction V


@njit(cache=True)
def _hvp_gather(X, V, net, start, k):
    """The :class:`HvpBlock` of the neurons start..start + k − 1: the pre-activations of X and
    of V on the inputs of ``net``."""
    Zt = net.inputs_t
    pre = np.empty((k, Zt.shape[1]), dtype=X.dtype)
    tau = np.empty((k, Zt.shape[1]), dtype=X.dtype)
    rows = np.arange(start, start + k)
    gathered = np.empty((k, Zt.shape[0]), dtype=X.dtype)
    _gather_pre_activations(X, net, rows, 0, k, gathered, pre)
    _gather_pre_activations(V, net, rows, 0, k, gathered, tau)
    return HvpBlock(start, k, pre, tau)


@njit(cache=True)
def _hvp_sums(X, V, net, block, out):
    """out[0] = Σ φ(x_i), out[1] = Σ Dφ(x_i) V_i (K, B) over the neurons of ``block``."""
    K, act = net.outputs, net.activation
    start, k, pre, tau = block
    batch = pre.shape[1]
    value = np.empty(batch, dtype=X.dtype)
    slope = np.empty(batch, dtype=X.dtype)
    out[:] = 0.0
    for r in range(k):
        i = start + r
        for j in range(batch):
            value[j] = _sigma(act, pre[r, j])
            slope[j] = _dsigma(act, pre[r, j]) * tau[r, j]
        for c in range(K):
            a, alpha = X[i, c], V[i, c]
            for j in range(batch):
                out[0, c, j] += a * value[j]
                out[1, c, j] += alpha * value[j] + a * slope[j]


@njit(cache=True)
def _hvp_residuals(slabs, scale, loss, y):
    """r = ∂loss/∂f and δr = ∂²loss δf from the block sums of f/scale and δf/scale."""
    K, batch = slabs.shape[2], slabs.shape[3]
    f = np.zeros((K, batch), dtype=slabs.dtype)
    df = np.zeros((K, batch), dtype=slabs.dtype)
    for blk in range(slabs.shape[0]):
        f += slabs[blk, 0]
        df += slabs[blk, 1]
    f *= scale
    df *= scale
    residual = np.empty((K, batch), dtype=slabs.dtype)
    dresidual = np.empty((K, batch), dtype=slabs.dtype)
    _loss_derivative(loss, f, y, residual)
    _loss_curvature(loss, f, y, df, dresidual)
    return residual, dresidual


@njit(cache=True, fastmath={"reassoc"})
def _hvp_rows(X, V, net, scale, weight, residuals, block, out):
    """Rows of ``block`` of ∇²L V (see :func:`_hessian_vector_product`), from the pair
    ``residuals`` = (r, δr) and the penalty's weight λ/B."""
    Z, K, has_bias, act = net.inputs, net.outputs, net.bias, net.activation
    residual, dresidual = residuals
    start, k, pre, tau = block
    batch, d = Z.shape
    value = np.empty(batch, dtype=X.dtype)
    first = np.empty(batch, dtype=X.dtype)
    second = np.empty(batch, dtype=X.dtype)
    coef = np.zeros((k, batch), dtype=X.dtype)
    grad_w = np.empty((k, d), dtype=X.dtype)
    for r in range(k):
        i = start + r
        for j in range(batch):
            value[j] = _sigma(act, pre[r, j])
            first[j] = _dsigma(act, pre[r, j])
            second[j] = _d2sigma(act, pre[r, j]) * tau[r, j]
        for c in range(K):
            a, alpha = X[i, c], V[i, c]
            acc = 0.0
            for j in range(batch):
                e = residual[c, j] + weight * a * value[j]
                eps = dresidual[c, j] + weight * (alpha * value[j] + a * first[j] * tau[r, j])
                acc += value[j] * eps + first[j] * tau[r, j] * e
                coef[r, j] += first[j] * (a * eps + alpha * e) + second[j] * a * e
            out[i, c] = scale * acc
        if has_bias:
            acc = 0.0
            for j in range(batch):
                acc += coef[r, j]
            out[i, K + d] = scale * acc
    np.dot(coef, Z, grad_w)
    for r in range(k):
        for c in range(d):
            out[start + r, K + c] = scale * grad_w[r, c]


@njit(cache=True, parallel=True)
def _hessian_vector_product(X, V, net, scale, penalty, out):
    """out = ∇²L(X) V, the exact Hessian of the penalised loss times a direction V (shape of X),
    on the data, loss and architecture of ``net`` (a
    :class:`~meanfield_dropout.kernels.structs.NetworkData`).

    L(X) = loss(f) + (penalty · scale / 2B) Σ_i Σ_j |φ(x_i, z_j)|², f = scale Σ_i φ(x_i, ·),
    is the loss whose gradient scale · Dφ(x_i)ᵀ e_i is :func:`_backward_update` with step
    −scale (e_i = r + penalty φ(x_i)/B): with scale κ and penalty cκ, c = (1 − p)/p, the
    modified loss L_S of Zhang, Li, Luo & Xu (2024). Forward mode along V = (α_i, β_i, γ_i):
    with τ_ij = β_i·z_j + γ_i, t_ij = α_i σ(u_ij) + a_i σ'(u_ij) τ_ij (= Dφ_ij V_i), the
    output derivative δf = scale Σ_i t_i, δr = ∂²loss δf (:func:`_loss_curvature`) and
    ε_ij = δr_j + penalty t_ij/B,

        (∇²L V)_i = scale Σ_j [Dφ_ijᵀ ε_ij + (DDφ_ij[V_i])ᵀ e_ij],

    i.e. a-part Σ_j σ ε + σ' τ e and w-part Σ_j g_j z_j, b-part Σ_j g_j with
    g_j = σ'(a·ε + α·e) + σ'' τ (a·e). Two blocked passes (δf, then the rows), each
    O(B n (K + d)); no matrix of size (n(K + d))² is formed. The block sums of f and δf are
    added in block order, so the result does not depend on the thread count; a single
    block runs without launching a parallel region.
    """
    n, batch = X.shape[0], net.inputs_t.shape[1]
    K, loss, y = net.outputs, net.loss, net.targets
    blocks = (n + BLOCK - 1) // BLOCK
    weight = penalty / batch
    # array expressions are kept out of this function: each would be a parallel region
    slabs = np.empty((blocks, 2, K, batch), dtype=X.dtype)
    if blocks == 1:  # no parallel region; the pre-activations serve both passes
        first = np.int64(0)      # not a literal 0: the blocks' specialisation serves
        block = _hvp_gather(X, V, net, first, n)
        _hvp_sums(X, V, net, block, slabs[0])
        residuals = _hvp_residuals(slabs, scale, loss, y)
        _hvp_rows(X, V, net, scale, weight, residuals, block, out)
        return
    for blk in prange(blocks):
        start = np.int64(blk) * BLOCK
        _hvp_sums(X, V, net, _hvp_gather(X, V, net, start, min(BLOCK, n - start)), slabs[blk])
    residuals = _hvp_residuals(slabs, scale, loss, y)
    for blk in prange(blocks):
        start = np.int64(blk) * BLOCK
        _hvp_rows(X, V, net, scale, weight, residuals,
                  _hvp_gather(X, V, net, start, min(BLOCK, n - start)), out)
