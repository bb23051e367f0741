"""The two-layer network f(θ, z) = s Σ_i M_i φ(x_i, z), φ(x, z) = a σ(w·z + b), as kernels.

A width-n network is a particle array ``X`` of shape ``(n, p)``: column 0 is the output
weight a_i, columns ``1..d`` the input weights w_i and, with a bias, column ``d + 1`` is b_i
(so p = 1 + d or 2 + d). The output scale s is 1/n (``mean_field``, the phase-diagram
paper) or 1 (``standard``, the SME paper).

Kernels work on a *subset of rows* (the active neurons), so a dropped neuron costs nothing.
Neurons go through in cache-sized blocks: the products with the data are BLAS calls on a
block, the activation and residual work is fused per neuron, and blocks are visited in a
fixed order, so results do not depend on the thread count.

The inner product on data space is the mean over the batch, ⟨u, v⟩ = (1/B) Σ_j u_j v_j, as in
the authors' code (loss ``0.5*mean((f - y)**2)``); the residual r returned by
:func:`_residual` already carries the 1/B.
"""
import math

import numpy as np
from numba import njit, prange
from threadpoolctl import threadpool_limits

from ._validate import check_array, check_choice
from .activations import _activate_row, _sigma, activation_code

LOSSES = {"square": 0, "logistic": 1}
OUTPUT_SCALES = ("mean_field", "standard")


def output_scale_factor(output_scale, width):
    """The factor s in f = s Σ_i φ(x_i): 1/n for ``mean_field``, 1 for ``standard``."""
    check_choice(output_scale, "output_scale", OUTPUT_SCALES)
    return 1.0 / width if output_scale == "mean_field" else 1.0


# Neurons are processed in blocks of ``BLOCK`` rows, small enough for the block's
# pre-activations to stay in cache; the products with the data are single-threaded BLAS
# calls on a block (see :func:`blas_single_thread`), blocks run in parallel threads, and the
# forward sums are reduced in block order, so results do not depend on any thread count.
BLOCK = 64


@njit(cache=True, inline="always")
def _block_pre_activation(X, rows, start, count, Zt, has_bias, gathered, out):
    """out[:count] = pre-activations w_i·z_j (+ b_i) of neurons rows[start:start+count]."""
    d = Zt.shape[0]
    for r in range(count):
        i = rows[start + r]
        for c in range(d):
            gathered[r, c] = X[i, 1 + c]
    np.dot(gathered[:count], Zt, out[:count])
    if has_bias:
        for r in range(count):
            bias = X[rows[start + r], 1 + d]
            for j in range(Zt.shape[1]):
                out[r, j] += bias


@njit(cache=True, parallel=True)
def _forward(X, rows, count, weight, scale, Zt, has_bias, act, pre, store, out):
    """f_j = scale · weight · Σ_{r<count} a_i σ(w_i·z_j + b_i), i = rows[r].

    ``weight`` is the forward mask value (1/q for kept neurons, 1 without a mask). With
    ``store`` the pre-activations of neuron rows[r] are kept in ``pre[r]`` for the backward
    pass. Blocks run in parallel, each summing into its own slab; slabs are then added in
    block order.
    """
    batch = Zt.shape[1]
    blocks = (count + BLOCK - 1) // BLOCK
    slabs = np.empty((blocks, batch), dtype=X.dtype)
    for blk in prange(blocks):
        start = blk * BLOCK
        k = min(BLOCK, count - start)
        gathered = np.empty((BLOCK, Zt.shape[0]), dtype=X.dtype)
        block_pre = np.empty((BLOCK, batch), dtype=X.dtype)
        value = np.empty((BLOCK, batch), dtype=X.dtype)
        coef = np.empty(BLOCK, dtype=X.dtype)
        target = pre[start:start + k] if store else block_pre[:k]
        _block_pre_activation(X, rows, start, k, Zt, has_bias, gathered, target)
        for r in range(k):
            _activate_row(act, target[r], value[r], coef[:0])
            coef[r] = scale * weight * X[rows[start + r], 0]
        np.dot(coef[:k], value[:k], slabs[blk])
    out[:] = 0.0
    for blk in range(blocks):
        out += slabs[blk]


@njit(cache=True)
def _residual(loss, f, y, out):
    """Derivative of the batch-mean loss with respect to f: r_j = ℓ'(f_j, y_j) / B.

    Square loss ℓ = ½(f − y)²; logistic loss ℓ = log(1 + exp(−y f)) for labels ±1.
    """
    batch = f.shape[0]
    for j in range(batch):
        if loss == 0:
            out[j] = (f[j] - y[j]) / batch
        else:
            out[j] = -y[j] / (1.0 + math.exp(y[j] * f[j])) / batch


@njit(cache=True)
def _loss_value(loss, f, y):
    """Batch-mean loss: ½ mean (f − y)² or mean log(1 + exp(−y f))."""
    total = 0.0
    for j in range(f.shape[0]):
        if loss == 0:
            total += 0.5 * (f[j] - y[j]) ** 2
        else:
            margin = -y[j] * f[j]
            total += max(margin, 0.0) + math.log1p(math.exp(-abs(margin)))
    return total / f.shape[0]


# ``reassoc`` lets the two per-neuron sums over the batch vectorise (a strict left-to-right
# sum is bound by the add latency); the order is fixed at compile time, so results still do
# not depend on the thread count.
@njit(cache=True, parallel=True, fastmath={"reassoc"})
def _backward_update(X, rows, count, mult, lr, penalty, residual, Z, Zt, has_bias, act, pre,
                     pre_index):
    """X_i ← X_i − lr · mult · Dφ(x_i)ᵀ (r + penalty · φ(x_i)/B) for i = rows[r], r < count.

    ``residual`` is r (with its 1/B); ``Z`` (B×d) and ``Zt`` (d×B) hold the batch. The
    pre-activations of neuron rows[r] are read from ``pre[pre_index[r]]`` (stored by
    :func:`_forward`), or recomputed when ``pre_index`` is empty. Each neuron's update depends
    only on its own parameters and r, so blocks update in place independently.
    """
    batch = Zt.shape[1]
    d = Zt.shape[0]
    step = lr * mult
    recompute = pre_index.shape[0] == 0
    blocks = (count + BLOCK - 1) // BLOCK
    for blk in prange(blocks):
        start = blk * BLOCK
        k = min(BLOCK, count - start)
        gathered = np.empty((BLOCK, d), dtype=X.dtype)
        block_pre = np.empty((BLOCK, batch), dtype=X.dtype)
        value = np.empty(batch, dtype=X.dtype)
        grad_pre = np.empty((BLOCK, batch), dtype=X.dtype)
        grad_a = np.empty(BLOCK, dtype=X.dtype)
        grad_b = np.empty(BLOCK, dtype=X.dtype)
        grad_w = np.empty((BLOCK, d), dtype=X.dtype)
        if recompute:
            _block_pre_activation(X, rows, start, k, Zt, has_bias, gathered, block_pre)
        for r in range(k):
            i = rows[start + r]
            row = block_pre[r] if recompute else pre[pre_index[start + r]]
            _activate_row(act, row, value, grad_pre[r])
            a = X[i, 0]
            self_weight = penalty * a / batch
            acc_a = 0.0
            acc_b = 0.0
            for j in range(batch):
                e = residual[j] + self_weight * value[j]
                acc_a += value[j] * e
                grad_pre[r, j] *= a * e
                acc_b += grad_pre[r, j]
            grad_a[r] = acc_a
            grad_b[r] = acc_b
        np.dot(grad_pre[:k], Z, grad_w[:k])
        for r in range(k):
            i = rows[start + r]
            X[i, 0] -= step * grad_a[r]
            for c in range(d):
                X[i, 1 + c] -= step * grad_w[r, c]
            if has_bias:
                X[i, 1 + d] -= step * grad_b[r]


@njit(cache=True)
def _predict(X, Zt, has_bias, act, scale):
    """Unmasked predictor f_j = scale · Σ_i a_i σ(w_i·z_j + b_i) on the columns of ``Zt``."""
    out = np.empty(Zt.shape[1], dtype=X.dtype)
    _forward(X, np.arange(X.shape[0]), X.shape[0], 1.0, scale, Zt, has_bias, act,
             np.empty((0, Zt.shape[1]), dtype=X.dtype), False, out)
    return out


@njit(cache=True)
def _features(X, Zt, has_bias, act):
    """φ(x_i, z_j) = a_i σ(w_i·z_j + b_i) for every neuron and data point, shape (n, m)."""
    n = X.shape[0]
    out = np.empty((n, Zt.shape[1]), dtype=X.dtype)
    rows = np.arange(n)
    _block_pre_activation(X, rows, 0, n, Zt, has_bias, np.empty((n, Zt.shape[0]), X.dtype),
                          out)
    for i in range(n):
        for j in range(Zt.shape[1]):
            out[i, j] = X[i, 0] * _sigma(act, out[i, j])
    return out


def blas_single_thread():
    """Context that keeps BLAS to one thread while kernels run their own parallel blocks.

    Nested BLAS threads inside Numba's threads oversubscribe the cores (a many-fold
    slowdown seen on 2 cores); each block's product is too small to gain from them.
    """
    return threadpool_limits(limits=1, user_api="blas")


def particle_dim(dim, bias):
    """Number of parameters p of one neuron: 1 + d, plus 1 with a bias."""
    return 1 + dim + int(bias)


def check_particles(particles, dim, bias, name="particles", dtype=np.float64):
    """Validate a particle array of shape (n, p) matching input dimension ``dim``."""
    arr = check_array(particles, name, 2, dtype=dtype)
    want = particle_dim(dim, bias)
    if arr.shape[1] != want:
        raise ValueError(
            f"{name} must have shape (width, {want}) for input dimension {dim}"
            f"{' with bias' if bias else ''}, got {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one neuron (width >= 1)")
    return arr


def predict(particles, inputs, *, activation="relu", bias=False, output_scale="mean_field"):
    """Evaluate the unmasked network f(θ, z) = s Σ_i a_i σ(w_i·z + b_i) on ``inputs``.

    Parameters
    ----------
    particles : ndarray, shape (n, p)
        Neurons x_i = (a_i, w_i[, b_i]).
    inputs : ndarray, shape (m, d)
        Data points z_j.
    activation : str
        σ, one of ``relu``, ``tanh``, ``softplus``, ``sigmoid``.
    bias : bool
        Whether the last particle column is a bias b_i.
    output_scale : {"mean_field", "standard"}
        s = 1/n (mean-field) or s = 1.

    Returns
    -------
    ndarray, shape (m,)
    """
    inputs = check_array(inputs, "inputs", 2)
    X = check_particles(particles, inputs.shape[1], bias)
    scale = output_scale_factor(output_scale, X.shape[0])
    Zt = np.ascontiguousarray(inputs.T)
    with blas_single_thread():
        return _predict(X, Zt, bias, activation_code(activation), scale)


def loss_value(particles, inputs, targets, *, loss="square", **network):
    """Mean loss of the unmasked network on (inputs, targets); ``network`` as in :func:`predict`."""
    check_choice(loss, "loss", LOSSES)
    f = predict(particles, inputs, **network)
    targets = check_array(targets, "targets", 1, shape=(f.shape[0],))
    return float(_loss_value(LOSSES[loss], f, targets))
