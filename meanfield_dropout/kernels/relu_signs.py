"""The sign path of the masked-row step: ReLU, one output, no penalty.

For σ(u) = 1[u > 0] u the backward pass of a neuron needs only the signs of its
pre-activations (:func:`_sign_path`). The forward pass of :mod:`meanfield_dropout.kernels.core`
keeps one byte per pre-activation (:func:`_sign_row`), and the backward pass is one BLAS
product per block of the 0/1 signs with the rows r_j (z_j, 1) (:func:`_sign_backward_step`).
Both papers' experiments are ReLU networks with one output.
"""
import numba
import numpy as np
from numba import njit, prange

from .blocks import BLOCK, Gradients, _apply_block, _gather_pre_activations, _slot, _view

#: Whether the masked-row step compiles the sign path alone: False here, where each call
#: chooses its path (:func:`_sign_path`); True in the kernels' sign-path copies
#: (:func:`meanfield_dropout.kernels.twins.sign_path_only`), which a run takes when every
#: rule it runs is on the sign path, so that it compiles no other backward pass.
SIGN_PATH_ONLY = False


@njit(cache=True, inline="always")
def _sign_path(act, K, penalty):
    """Whether the masked-row step needs only the signs of the pre-activations.

    For ReLU, one output and no penalty, σ(u) = 1[u > 0] u and u = w̃·z̃ (w̃ = (w, b),
    z̃ = (z, 1)) give, with G_i = Σ_j 1[u_ij > 0] r_j z̃_j,

        a-part = w̃_i·G_i,   (w, b)-part = a_i G_i,

    so one product of the 0/1 sign matrix with the rows r_j z̃_j replaces the activation,
    the residual work and the stored pre-activations (1 byte per entry instead of 4 or 8).
    The same numbers to rounding: each part is a sum of the same Σ_j terms, regrouped.
    """
    return act == 0 and K == 1 and penalty == 0.0


@njit(cache=True, inline="always")
def _sign_row(pre_row, out):
    """out = 1[pre_row > 0] in out's type (uint8 signs kept by a forward pass, or a float
    tile for the product of the backward pass)."""
    one, zero = out.dtype.type(1), out.dtype.type(0)
    threshold = pre_row.dtype.type(0.0)
    for j in range(out.shape[0]):
        out[j] = one if pre_row[j] > threshold else zero


@njit(cache=True, inline="always")
def _store_signs(target, signs):
    """signs[r] = 1[target[r] > 0] for the rows of ``signs`` (none if it is empty)."""
    for r in range(signs.shape[0]):
        _sign_row(target[r], signs[r])


@njit(cache=True, parallel=True)
def _sign_backward_step(X, net, rows, update, kept, out, work):
    """:func:`~meanfield_dropout.kernels.core._backward_step` on the sign path (one output, K = 1).

    Neuron rows[r]'s signs are read from ``kept.signs[kept.index[r]]`` if ``kept.signs`` has
    rows, else taken from ``kept.pre[kept.index[r]]``, or recomputed when ``kept.index`` is
    empty. The rows r_j (z_j, 1) are formed once; each block's rows move by
    :func:`_sign_block`.
    """
    Z, has_bias, residual = net.inputs, net.bias, update.residual
    batch, d = Z.shape
    weighted = _view(_slot(work.weighted_inputs, 0), batch, d + 1 if has_bias else d)
    for j in range(batch):
        for c in range(d):
            weighted[j, c] = residual[0, j] * Z[j, c]
        if has_bias:
            weighted[j, d] = residual[0, j]
    # the parallel region is one call per block: its body compiles once, as a plain function
    for blk in prange((rows.count + BLOCK - 1) // BLOCK):
        _sign_block(X, net, rows, update.step, weighted, kept, out, work, np.int64(blk),
                    numba.get_thread_id())


@njit(cache=True, fastmath={"reassoc"})
def _sign_block(X, net, rows, step, weighted, kept, out, work, blk, t):
    """Block ``blk`` of :func:`_sign_backward_step` on the scratch slot ``t``: G of its rows
    as one product of their 0/1 signs with ``weighted`` (the rows r_j (z_j, 1)), then the
    step of size ``step``."""
    Zt, has_bias = net.inputs_t, net.bias
    pre, signs, pre_index = kept
    d, batch = Zt.shape
    K = 1
    d1 = weighted.shape[1]
    recompute = pre_index.shape[0] == 0
    start = blk * BLOCK
    k = min(BLOCK, rows.count - start)
    tile = _view(_slot(work.grad_pre, t), k, batch)
    if recompute:
        block_pre = _view(_slot(work.block_pre, t), BLOCK, batch)
        _gather_pre_activations(X, net, rows.index, start, k,
                                _view(_slot(work.gathered, t), BLOCK, d), block_pre)
        _store_signs(block_pre, tile)
    elif signs.shape[0] > 0:
        for r in range(k):
            source = signs[pre_index[start + r]]
            for j in range(batch):
                tile[r, j] = source[j]
    else:
        for r in range(k):
            _sign_row(pre[pre_index[start + r]], tile[r])
    sums = _view(_slot(work.input_sums, t), k, d1)
    np.dot(tile, weighted, sums)
    grad_a = _view(_slot(work.grad_a, t), BLOCK, K)
    grad_b = _slot(work.grad_b, t)
    grad_w = _view(_slot(work.grad_w, t), BLOCK, d)
    for r in range(k):
        i = rows.index[start + r]
        acc = sums.dtype.type(0.0)
        for c in range(d1):
            acc += X[i, K + c] * sums[r, c]
        grad_a[r, 0] = acc
        for c in range(d):
            grad_w[r, c] = X[i, 0] * sums[r, c]
        if has_bias:
            grad_b[r] = X[i, 0] * sums[r, d]
    _apply_block(out, rows.index, start, k, step, Gradients(grad_a, grad_w, grad_b), has_bias)
