"""The kernel layer: the two-layer network, its loss and its gradient, written once.

Every dynamics of the package (the engine's variants, the five limits, the SME module's
dropout and modified-loss iterations) is built on the private ``@njit`` kernels of this
module. They take plain arrays, check nothing and allocate only scratch space.

Network. A width-n network is a particle array ``X`` of shape ``(n, K + d [+ 1])``: row i is
neuron x_i = (a_i, w_i[, b_i]) with output weights a_i ∈ R^K (K = 1 for a scalar output),
input weights w_i ∈ R^d and an optional bias b_i. The feature map and predictor are

    φ(x_i, z) = a_i σ(w_i·z + b_i) ∈ R^K,      f(z) = s · ω · Σ_{i ∈ rows} φ(x_i, z),

with output scale s (1/n in the mean-field scaling of Chizat, Marion & Yesbay (2025); 1 or κ
in the network of Zhang, Li, Luo & Xu (2024)) and a mask weight ω (1/q for the kept rows of a
dropout mask, 1 without one). Data enter as ``Zt`` of shape (d, B) (and ``Z`` = ``Zt``ᵀ);
outputs, targets and residuals are output-major arrays of shape (K, B).

Loss. The data inner product is the batch mean, so the residual r = ∂loss/∂f carries 1/B:
square loss ½ mean_j |f_j − y_j|², logistic loss mean_j log(1 + exp(−y_j f_j)) (K = 1,
labels ±1) and softmax cross-entropy mean_j (logsumexp f_j − y_j·f_j) (one-hot y_j).

Gradient. For a per-neuron residual e_i = r + λ φ(x_i)/B (λ = 0 except for the explicit
penalty of the modified loss), Dφ(x_i)ᵀ e_i has the parts

    a-part  Σ_j σ(u_ij) e_ij,   w-part  Σ_j σ'(u_ij) (a_i·e_ij) z_j,   b-part  Σ_j σ'(u_ij) a_i·e_ij,

u_ij = w_i·z_j + b_i. The masked-row step moves the neurons ``rows[:count]`` by
−step · Dφ(x_i)ᵀ e_i. It is computed per row by :func:`_row_coefficients` and then either for
blocks of :data:`BLOCK` rows with one BLAS product per block (:func:`_backward_update`) or for
one row with plain loops (:func:`_row_step`, a ring of a jump limit).

Blocks run on Numba threads; the forward sums are reduced in block order and each row's update
depends only on its own parameters and r, so results do not depend on the thread count. Keep
BLAS to one thread while these kernels run (:func:`meanfield_dropout.network.blas_single_thread`).
"""
import math

import numpy as np
from numba import njit, prange

from .activations import _activate_row

#: Loss codes of the kernels.
LOSSES = {"square": 0, "logistic": 1, "softmax": 2}
#: Rows per block: small enough for a block's pre-activations to stay in cache.
BLOCK = 64


@njit(cache=True, inline="always")
def _gather_pre_activations(X, rows, start, count, Zt, K, has_bias, gathered, out):
    """out[:count] = w_i·z_j (+ b_i) for the neurons i = rows[start:start + count]."""
    d = Zt.shape[0]
    for r in range(count):
        i = rows[start + r]
        for c in range(d):
            gathered[r, c] = X[i, K + c]
    np.dot(gathered[:count], Zt, out[:count])
    if has_bias:
        for r in range(count):
            bias = X[rows[start + r], K + d]
            for j in range(Zt.shape[1]):
                out[r, j] += bias


@njit(cache=True, parallel=True)
def _forward(X, rows, count, weight, scale, Zt, K, has_bias, act, pre, store, out):
    """out (K, B) = scale · weight · Σ_{r < count} φ(x_i, z_j), i = rows[r].

    With ``store`` the pre-activations of neuron rows[r] are kept in ``pre[r]`` for the
    backward pass. Each block sums into its own slab; slabs are added in block order.
    """
    batch = Zt.shape[1]
    blocks = (count + BLOCK - 1) // BLOCK
    slabs = np.empty((blocks, K, batch), dtype=X.dtype)
    for blk in prange(blocks):
        start = blk * BLOCK
        k = min(BLOCK, count - start)
        gathered = np.empty((BLOCK, Zt.shape[0]), dtype=X.dtype)
        block_pre = np.empty((BLOCK, batch), dtype=X.dtype)
        value = np.empty((BLOCK, batch), dtype=X.dtype)
        coef = np.empty((K, BLOCK), dtype=X.dtype)
        target = pre[start:start + k] if store else block_pre[:k]
        _gather_pre_activations(X, rows, start, k, Zt, K, has_bias, gathered, target)
        for r in range(k):
            _activate_row(act, target[r], value[r], coef[0, :0])
            for c in range(K):
                coef[c, r] = scale * weight * X[rows[start + r], c]
        if K == 1:
            np.dot(coef[0, :k], value[:k], slabs[blk, 0])
        else:
            np.dot(np.ascontiguousarray(coef[:, :k]), value[:k], slabs[blk])
    out[:] = 0.0
    for blk in range(blocks):
        out += slabs[blk]


@njit(cache=True)
def _predict(X, Zt, K, has_bias, act, scale):
    """Unmasked predictor f = scale · Σ_i φ(x_i, ·) on the columns of ``Zt``, shape (K, B)."""
    out = np.empty((K, Zt.shape[1]), dtype=X.dtype)
    _forward(X, np.arange(X.shape[0]), X.shape[0], 1.0, scale, Zt, K, has_bias, act,
             np.empty((0, Zt.shape[1]), dtype=X.dtype), False, out)
    return out


@njit(cache=True)
def _loss_derivative(loss, f, y, out):
    """out = ∂(batch-mean loss)/∂f, shape (K, B), carrying the 1/B of the mean."""
    K, batch = f.shape
    for j in range(batch):
        if loss == 0:
            for c in range(K):
                out[c, j] = (f[c, j] - y[c, j]) / batch
        elif loss == 1:
            out[0, j] = -y[0, j] / (1.0 + math.exp(y[0, j] * f[0, j])) / batch
        else:
            top = f[0, j]
            for c in range(1, K):
                top = max(top, f[c, j])
            total = 0.0
            for c in range(K):
                out[c, j] = math.exp(f[c, j] - top)
                total += out[c, j]
            for c in range(K):
                out[c, j] = (out[c, j] / total - y[c, j]) / batch


@njit(cache=True)
def _loss_value(loss, f, y):
    """Batch-mean loss of outputs ``f`` (K, B) against targets ``y`` (K, B)."""
    K, batch = f.shape
    total = 0.0
    for j in range(batch):
        if loss == 0:
            for c in range(K):
                total += 0.5 * (f[c, j] - y[c, j]) ** 2
        elif loss == 1:
            margin = -y[0, j] * f[0, j]
            total += max(margin, 0.0) + math.log1p(math.exp(-abs(margin)))
        else:
            top = f[0, j]
            for c in range(1, K):
                top = max(top, f[c, j])
            norm = 0.0
            for c in range(K):
                norm += math.exp(f[c, j] - top)
            total += top + math.log(norm)
            for c in range(K):
                total -= y[c, j] * f[c, j]
    return total / batch


@njit(cache=True, inline="always")
def _row_coefficients(act, pre_row, value, grad_pre, a, penalty, residual, scratch, grad_a):
    """Fused activation and residual work of one neuron; returns its b-part.

    On return ``value`` = σ(u), ``grad_pre`` = σ'(u) (a·e_j) and ``grad_a`` = Σ_j σ(u_j) e_j
    with e_j = r_j + penalty · a σ(u_j)/B (``a`` the neuron's K output weights, ``residual``
    r of shape (K, B)). The w-part is then Σ_j grad_pre[j] z_j.
    """
    _activate_row(act, pre_row, value, grad_pre)
    K, batch = residual.shape
    if K == 1:
        a0 = a[0]
        self_weight = penalty * a0 / batch
        acc_a = 0.0
        acc_b = 0.0
        for j in range(batch):
            e = residual[0, j] + self_weight * value[j]
            acc_a += value[j] * e
            grad_pre[j] *= a0 * e
            acc_b += grad_pre[j]
        grad_a[0] = acc_a
        return acc_b
    for j in range(batch):
        scratch[j] = 0.0
    for c in range(K):
        ac = a[c]
        self_weight = penalty * ac / batch
        acc_a = 0.0
        for j in range(batch):
            e = residual[c, j] + self_weight * value[j]
            acc_a += value[j] * e
            scratch[j] += ac * e
        grad_a[c] = acc_a
    acc_b = 0.0
    for j in range(batch):
        grad_pre[j] *= scratch[j]
        acc_b += grad_pre[j]
    return acc_b


# ``reassoc`` lets the per-neuron sums over the batch vectorise (a strict left-to-right sum is
# bound by the add latency); the order is fixed at compile time, so results still do not
# depend on the thread count.
@njit(cache=True, parallel=True, fastmath={"reassoc"})
def _backward_update(X, rows, count, step, penalty, residual, Z, Zt, K, has_bias, act, pre,
                     pre_index, out):
    """The masked-row step: out_i ← out_i − step · Dφ(x_i)ᵀ e_i for i = rows[r], r < count.

    ``residual`` is r (K, B) with its 1/B and e_i = r + penalty · φ(x_i)/B; ``Z`` (B×d) and
    ``Zt`` (d×B) hold the batch. ``out`` is ``X`` itself for an in-place step, or another
    array of X's shape (e.g. zeros with step −1 gives the drift −Dφᵀe). The pre-activations
    of neuron rows[r] are read from ``pre[pre_index[r]]`` (stored by :func:`_forward`), or
    recomputed when ``pre_index`` is empty.
    """
    batch = Zt.shape[1]
    d = Zt.shape[0]
    recompute = pre_index.shape[0] == 0
    blocks = (count + BLOCK - 1) // BLOCK
    for blk in prange(blocks):
        start = blk * BLOCK
        k = min(BLOCK, count - start)
        gathered = np.empty((BLOCK, d), dtype=X.dtype)
        block_pre = np.empty((BLOCK, batch), dtype=X.dtype)
        value = np.empty(batch, dtype=X.dtype)
        scratch = np.empty(batch, dtype=X.dtype)
        grad_pre = np.empty((BLOCK, batch), dtype=X.dtype)
        grad_a = np.empty((BLOCK, K), dtype=X.dtype)
        grad_b = np.empty(BLOCK, dtype=X.dtype)
        grad_w = np.empty((BLOCK, d), dtype=X.dtype)
        if recompute:
            _gather_pre_activations(X, rows, start, k, Zt, K, has_bias, gathered, block_pre)
        for r in range(k):
            i = rows[start + r]
            row = block_pre[r] if recompute else pre[pre_index[start + r]]
            grad_b[r] = _row_coefficients(act, row, value, grad_pre[r], X[i, :K], penalty,
                                          residual, scratch, grad_a[r])
        np.dot(grad_pre[:k], Z, grad_w[:k])
        for r in range(k):
            i = rows[start + r]
            for c in range(K):
                out[i, c] -= step * grad_a[r, c]
            for c in range(d):
                out[i, K + c] -= step * grad_w[r, c]
            if has_bias:
                out[i, K + d] -= step * grad_b[r]


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
def _row_step(X, i, step, penalty, residual, Zt, K, has_bias, act, work, grad_a, out):
    """One-row masked step: out_i ← out_i − step · Dφ(x_i)ᵀ e_i for the single neuron i.

    The same arithmetic as one row of :func:`_backward_update`, with the products with the
    data as plain loops (one row is too small for BLAS). ``work`` (4, B) and ``grad_a`` (K,)
    are scratch (so a loop of rings allocates nothing) and must not alias anything else.
    """
    d, batch = Zt.shape
    pre, value, grad_pre, scratch = work[0], work[1], work[2], work[3]
    _row_pre_activations(X, i, Zt, K, has_bias, pre)
    grad_b = _row_coefficients(act, pre, value, grad_pre, X[i, :K], penalty, residual,
                               scratch, grad_a)
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
def _row_features(X, i, Zt, K, has_bias, act, pre, out):
    """out (K, B) = φ(x_i, z_j) = a_i σ(w_i·z_j + b_i) for the single neuron i."""
    _row_pre_activations(X, i, Zt, K, has_bias, pre)
    value = out[0]
    _activate_row(act, pre, value, pre[:0])
    for c in range(K - 1, -1, -1):
        for j in range(Zt.shape[1]):
            out[c, j] = X[i, c] * value[j]


@njit(cache=True)
def _all_features(X, Zt, K, has_bias, act):
    """φ(x_i, z_j) for every neuron, shape (n, K, B)."""
    n = X.shape[0]
    out = np.empty((n, K, Zt.shape[1]), dtype=X.dtype)
    pre = np.empty(Zt.shape[1], dtype=X.dtype)
    for i in range(n):
        _row_features(X, i, Zt, K, has_bias, act, pre, out[i])
    return out
