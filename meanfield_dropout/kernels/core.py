"""The kernel layer: the two-layer network, its loss and its gradient, written once.

Every dynamics of the package (the engine's variants, the five limits, the SME module's
dropout and modified-loss iterations) is built on the private ``@njit`` kernels of this
module and the three beside it in the kernel layer: :mod:`~meanfield_dropout.kernels.blocks` (the
scratch and the two ends of a block's step), :mod:`~meanfield_dropout.kernels.relu_signs` (the sign
path of ReLU) and :mod:`~meanfield_dropout.kernels.rows` (one neuron at a time, for the jump
limits). They take plain arrays and the small structs of :mod:`~meanfield_dropout.kernels.structs`
(the network's data, a pass's rows and weights, what a forward pass keeps, a step's constants),
check nothing and allocate only scratch space.

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
blocks of :data:`~meanfield_dropout.kernels.blocks.BLOCK` rows with one BLAS product per block
(:func:`_backward_update`) or for one row with plain loops
(:func:`~meanfield_dropout.kernels.rows._row_step_activated`, a ring of a jump limit). For ReLU
with one output and no penalty (the papers' experiments) the blocked step takes the sign path
(:func:`~meanfield_dropout.kernels.relu_signs._sign_path`): both parts come from
G_i = Σ_j 1[u_ij > 0] r_j (z_j, 1), one product of the 0/1 signs with the data, so the
forward pass keeps one byte per pre-activation.

Second order (:mod:`meanfield_dropout.kernels.second_order`): the masked-row step with a residual of
its own for every neuron, and exact Hessian–vector products of the penalised loss
L = loss(f) + (λ s/2B) Σ_i Σ_j |φ(x_i, z_j)|², on the kernels of this module.

Blocks run on Numba threads; the forward sums are reduced in block order and each row's update
depends only on its own parameters and r, so results do not depend on the thread count. Keep
BLAS to one thread while these kernels run (:func:`meanfield_dropout.runtime.threads.blas_single_thread`).
"""
import math
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from .activations import _activate_row
from .blocks import (BLOCK, Gradients, _apply_block, _call_workspace, _check_workspace,
                     _gather_pre_activations, _slot, _view)
from .relu_signs import (SIGN_PATH_ONLY, _sign_backward_step, _sign_path, _sign_row,
                         _store_signs)
from .structs import Kept, Rows, Weights

#: Loss codes of the kernels.
LOSSES = {"square": 0, "logistic": 1, "softmax": 2}


@njit(cache=True)
def _forward(X, net, rows, weights, pre, out):
    """out (K, B) = s · ω · Σ_{r < weights.weighted_count} φ(x_i, z_j), i = rows.index[r].

    ``net`` is a :class:`~meanfield_dropout.kernels.structs.NetworkData` (its Zᵀ, K, bias and
    σ), ``rows`` the :class:`~meanfield_dropout.kernels.structs.Rows` and ``weights`` the
    :class:`~meanfield_dropout.kernels.structs.Weights` (ω, s) of the pass. If ``pre`` has
    rows, the pre-activations of neuron rows.index[r] are kept in ``pre[r]`` for the backward
    pass (see :func:`_forward_sums`, which takes a persistent workspace).
    """
    work = _call_workspace(X, rows.count, net.outputs, net.inputs_t)
    kept = Kept(pre, np.empty((0, 0), dtype=np.uint8), rows.index[:0])
    _forward_sums(X, net, rows, weights, kept, out, out[:, :0], work)


@njit(cache=True, parallel=True)
def _forward_sums(X, net, rows, weights, kept, out, plain, work):
    """out (K, B) = s · ω · Σ φ(x_i, ·) over the rows ``rows.index[:weights.weighted_count]``
    and, if ``plain`` has columns, plain = s · Σ φ(x_i, ·) over all ``rows.count`` rows.

    ``net`` is a :class:`~meanfield_dropout.kernels.structs.NetworkData` (its inputs Zᵀ, K,
    bias and σ), ``rows`` the :class:`~meanfield_dropout.kernels.structs.Rows` and
    ``weights`` the :class:`~meanfield_dropout.kernels.structs.Weights` (ω, s) of the pass.
    ``plain`` is the sum without the mask weight: with the kept neurons first and the
    dropped ones after them, it is the unmasked predictor a loss record needs, in the same
    pass as the step's own.
    Neuron rows[r]'s pre-activations are kept in ``kept.pre[r]`` if it has rows, and their
    signs 1[u > 0] in ``kept.signs[r]`` (uint8) if it has rows: all the backward pass of the
    sign path needs (:func:`~meanfield_dropout.kernels.relu_signs._sign_path`). ``work`` is a
    :class:`~meanfield_dropout.kernels.blocks.Workspace` for at least ``rows.count`` rows.
    Each block sums into its own slab (:func:`_forward_block`); slabs are added in block
    order. The weighted rows fill blocks of their own, so the weighted sum is the same bits
    with or without the rows after them.
    """
    count = rows.count
    d, batch = net.inputs_t.shape
    _check_workspace(work, count, net.outputs, d, batch)
    # BLAS rounds a product by its shape: no block mixes weighted rows with the others
    weighted_count = min(weights.weighted_count, count)
    weighted_blocks = (weighted_count + BLOCK - 1) // BLOCK
    blocks = weighted_blocks + (count - weighted_count + BLOCK - 1) // BLOCK
    # the parallel region is one call per block: its body compiles once, as a plain function
    for blk in prange(blocks):
        _forward_block(X, net, rows, weights, kept, plain, work, np.int64(blk),
                       numba.get_thread_id())
    _add_slabs(work.slabs, weighted_blocks, out)
    if plain.shape[1] > 0:
        _add_slabs(work.plain_slabs, blocks, plain)


class BlockSums(NamedTuple):
    """The rows of one block's sums for one output (:func:`_scalar_block_sums`)."""

    coef: np.ndarray        # (k,) s ω a_i of the block's rows
    plain_coef: np.ndarray  # (k,) s a_i of the block's rows
    value: np.ndarray       # (B,) scratch
    slab: np.ndarray        # (B,) the block's weighted sum
    plain_slab: np.ndarray  # (B,) the block's plain sum


@njit(cache=True)
def _forward_block(X, net, rows, weights, kept, plain, work, blk, t):
    """Block ``blk`` of :func:`_forward_sums` on the scratch slot ``t``: its rows in order
    into its slab ``work.slabs[blk]`` (and ``work.plain_slabs[blk]``)."""
    Zt, K, act = net.inputs_t, net.outputs, net.activation
    pre, signs, count = kept.pre, kept.signs, rows.count
    weight, scale = weights.weight, weights.scale
    weighted_count = min(weights.weighted_count, count)
    d, batch = Zt.shape
    with_plain = plain.shape[1] > 0
    store_pre = pre.shape[0] > 0
    store_signs = signs.shape[0] > 0
    weighted_blocks = (weighted_count + BLOCK - 1) // BLOCK
    weighted = blk < weighted_blocks
    start = blk * BLOCK if weighted else weighted_count + (blk - weighted_blocks) * BLOCK
    k = min(BLOCK, (weighted_count if weighted else count) - start)
    value = _view(_slot(work.value, t), BLOCK, batch)
    coef = _view(_slot(work.coef, t), K, BLOCK)
    plain_coef = _view(_slot(work.plain_coef, t), K, BLOCK)
    target = pre[start:start + k] if store_pre else _view(_slot(work.block_pre, t), k, batch)
    _gather_pre_activations(X, net, rows.index, start, k,
                            _view(_slot(work.gathered, t), BLOCK, d), target)
    for r in range(k):
        for c in range(K):
            if weighted:
                coef[c, r] = scale * weight * X[rows.index[start + r], c]
            if with_plain:
                plain_coef[c, r] = scale * X[rows.index[start + r], c]
    slab = _view(work.slabs[blk], K, batch)
    plain_slab = _view(work.plain_slabs[blk], K, batch)
    kept_signs = signs[start:start + k] if store_signs else signs[:0]
    # a constant: with SIGN_PATH_ONLY (one output) the path of several is not compiled
    if SIGN_PATH_ONLY or K == 1:
        _scalar_block_sums(act, target, weighted, with_plain, k,
                           BlockSums(coef[0], plain_coef[0], value[0], slab[0], plain_slab[0]),
                           kept_signs)
        return
    _store_signs(target, kept_signs)
    for r in range(k):
        _activate_row(act, target[r], value[r], value[r, :0])
    if weighted:
        _block_sum(coef, value, k, slab)
    if with_plain:
        _block_sum(plain_coef, value, k, plain_slab)


@njit(cache=True, inline="always")
def _add_slabs(slabs, blocks, out):
    """out (K, B) = Σ_{blk < blocks} slabs[blk], added in block order."""
    K, batch = out.shape
    for c in range(K):
        for j in range(batch):
            out[c, j] = 0.0
    for blk in range(blocks):
        slab = slabs[blk]
        for c in range(K):
            for j in range(batch):
                out[c, j] += slab[c * batch + j]


@njit(cache=True)
def _scalar_block_sums(act, target, weighted, with_plain, k, sums, signs):
    """sums.slab (B,) = Σ_{r < k} coef[r] σ(target[r]), rows in order (one output), if the
    block is ``weighted``, and sums.plain_slab = Σ_{r < k} plain_coef[r] σ(target[r]) if
    ``with_plain`` (a block that is neither is not summed); the signs 1[target > 0] go to
    ``signs`` if it has rows. ``sums`` is a :class:`BlockSums`; its ``value`` is scratch.

    Each row's activations stay in registers or cache between the activation and the sums,
    where a matrix–vector product over the block would read them back from a (k, B) tile.
    """
    coef, plain_coef, value, slab, plain_slab = sums
    if weighted:
        slab[:] = 0.0
    if with_plain:
        plain_slab[:] = 0.0
    store = signs.shape[0] > 0
    zero = value.dtype.type(0.0)
    for r in range(k):
        c = coef[r] if weighted else plain_coef[r]
        u = target[r]
        if not weighted:
            # a dropped neuron of a loss record: the plain sum only
            _activate_row(act, u, value, value[:0])
            for j in range(value.shape[0]):
                plain_slab[j] += c * value[j]
        elif SIGN_PATH_ONLY or act == 0:
            # ReLU in the same pass as the sums: u is read once (SIGN_PATH_ONLY, a constant:
            # the other activations' branch is not compiled)
            if with_plain:
                c_plain = plain_coef[r]
                for j in range(value.shape[0]):
                    v = max(u[j], zero)
                    slab[j] += c * v
                    plain_slab[j] += c_plain * v
            else:
                for j in range(value.shape[0]):
                    slab[j] += c * max(u[j], zero)
        else:
            _activate_row(act, u, value, value[:0])
            for j in range(value.shape[0]):
                slab[j] += c * value[j]
            if with_plain:
                c = plain_coef[r]
                for j in range(value.shape[0]):
                    plain_slab[j] += c * value[j]
        if store:
            _sign_row(u, signs[r])


@njit(cache=True, inline="always")
def _block_sum(coef, value, count, out):
    """out (K, B) = coef[:, :count] @ value[:count] (a matrix–vector product for K = 1)."""
    if coef.shape[0] == 1:
        np.dot(coef[0, :count], value[:count], out[0])
    else:
        np.dot(np.ascontiguousarray(coef[:, :count]), value[:count], out)


@njit(cache=True)
def _predict(X, net, scale):
    """Unmasked predictor f = scale · Σ_i φ(x_i, ·) on the inputs of ``net`` (a
    :class:`~meanfield_dropout.kernels.structs.NetworkData`), shape (K, B)."""
    n, batch = X.shape[0], net.inputs_t.shape[1]
    out = np.empty((net.outputs, batch), dtype=X.dtype)
    _forward(X, net, Rows(np.arange(n), n), Weights(1.0, scale, n),
             np.empty((0, batch), dtype=X.dtype), out)
    return out


@njit(cache=True, inline="always")
def _column_max(f, j):
    """max_c f[c, j]: the shift that keeps the exponentials of the softmax of column j ≤ 1."""
    top = f[0, j]
    for c in range(1, f.shape[0]):
        top = max(top, f[c, j])
    return top


@njit(cache=True, inline="always")
def _softmax_numerators(f, j, out):
    """out[c, j] = exp(f[c, j] − max_c f[c, j]); returns their sum (the softmax's normaliser)."""
    top = _column_max(f, j)
    total = 0.0
    for c in range(f.shape[0]):
        out[c, j] = math.exp(f[c, j] - top)
        total += out[c, j]
    return total


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
            total = _softmax_numerators(f, j, out)
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
            top = _column_max(f, j)
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
    if act == 0 and residual.shape[0] == 1:
        return _relu_coefficients(pre_row, grad_pre, a[0], penalty, residual[0], grad_a)
    _activate_row(act, pre_row, value, grad_pre)
    return _coefficients(value, grad_pre, a, penalty, residual, scratch, grad_a)


@njit(cache=True, fastmath={"reassoc"})
def _relu_coefficients(pre_row, grad_pre, a0, penalty, residual_row, grad_a):
    """:func:`_row_coefficients` for ReLU and one output in a single pass over the data.

    The same per-entry numbers as :func:`_activate_row` then :func:`_coefficients`
    (σ'(u) = 1 or 0 multiplies a·e, so a non-finite residual still propagates); reading
    u once instead of three arrays twice is what makes it about 4× cheaper."""
    real = grad_pre.dtype.type
    zero, one = real(0.0), real(1.0)
    acc_a = real(0.0)
    acc_b = real(0.0)
    if penalty == 0.0:
        # e = r: the penalty's zero term costs 40% more in this loop
        for j in range(pre_row.shape[0]):
            u = pre_row[j]
            e = residual_row[j]
            acc_a += max(u, zero) * e
            g = (one if u > zero else zero) * (a0 * e)
            grad_pre[j] = g
            acc_b += g
    else:
        self_weight = real(penalty * a0 / pre_row.shape[0])
        for j in range(pre_row.shape[0]):
            u = pre_row[j]
            v = max(u, zero)
            e = residual_row[j] + self_weight * v
            acc_a += v * e
            g = (one if u > zero else zero) * (a0 * e)
            grad_pre[j] = g
            acc_b += g
    grad_a[0] = acc_a
    return acc_b


@njit(cache=True, inline="always")
def _coefficients(value, grad_pre, a, penalty, residual, scratch, grad_a):
    """:func:`_row_coefficients` after the activation: ``value`` = σ(u) is read and
    ``grad_pre`` = σ'(u) on entry becomes σ'(u) (a·e_j)."""
    K, batch = residual.shape
    # sums in the rows' own precision: float32 rows stay float32 (and vectorise twice as wide)
    real = value.dtype.type
    if K == 1:
        a0 = a[0]
        self_weight = real(penalty * a0 / batch)
        acc_a = real(0.0)
        acc_b = real(0.0)
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
        self_weight = real(penalty * ac / batch)
        acc_a = real(0.0)
        for j in range(batch):
            e = residual[c, j] + self_weight * value[j]
            acc_a += value[j] * e
            scratch[j] += ac * e
        grad_a[c] = acc_a
    acc_b = real(0.0)
    for j in range(batch):
        grad_pre[j] *= scratch[j]
        acc_b += grad_pre[j]
    return acc_b


@njit(cache=True)
def _backward_update(X, net, rows, update, kept, out):
    """The masked-row step: out_i ← out_i − step · Dφ(x_i)ᵀ e_i for i = rows.index[r],
    r < rows.count.

    ``update`` is the :class:`~meanfield_dropout.kernels.structs.Update` (step, penalty λ,
    residual r (K, B) with its 1/B; e_i = r + λ φ(x_i)/B); ``net`` the
    :class:`~meanfield_dropout.kernels.structs.NetworkData` of the batch (Z, Zᵀ, K, bias, σ).
    ``out`` is ``X`` itself for an in-place step, or another array of X's shape (e.g. zeros
    with step −1 gives the drift −Dφᵀe). The pre-activations of neuron rows.index[r] are
    read from ``kept.pre[kept.index[r]]`` (stored by :func:`_forward`), or recomputed when
    ``kept.index`` is empty (:class:`~meanfield_dropout.kernels.structs.Kept`).
    :func:`_backward_step` is the same with a persistent workspace.
    """
    work = _call_workspace(X, rows.count, net.outputs, net.inputs_t)
    _backward_step(X, net, rows, update, kept, out, work)


@njit(cache=True, parallel=True)
def _backward_step(X, net, rows, update, kept, out, work):
    """The masked-row step on the :class:`~meanfield_dropout.kernels.structs.Rows` ``rows``:
    out_i ← out_i − step · Dφ(x_i)ᵀ e_i with the
    :class:`~meanfield_dropout.kernels.structs.Update` ``update`` (step, penalty, residual),
    on the data ``net`` (a :class:`~meanfield_dropout.kernels.structs.NetworkData`: Z, Zᵀ, K,
    bias and σ) with the scratch of a :class:`~meanfield_dropout.kernels.blocks.Workspace`
    ``work``.

    Neuron rows[r]'s pre-activations are read from ``kept.pre[kept.index[r]]`` (stored by
    :func:`_forward_sums`), or recomputed when ``kept.index`` is empty. On the sign path
    (:func:`~meanfield_dropout.kernels.relu_signs._sign_path`) its signs are read from
    ``kept.signs[kept.index[r]]`` if ``kept.signs`` has rows, else from ``kept.pre``, or
    recomputed. Each block's rows move by :func:`_backward_block`, which reads only their
    own parameters and r. Its sign-path copy
    (:func:`~meanfield_dropout.kernels.twins.sign_path_only`) takes the sign path always.
    """
    d, batch = net.inputs_t.shape
    _check_workspace(work, rows.count, net.outputs, d, batch)
    # a constant: with SIGN_PATH_ONLY the other pass is not compiled
    if SIGN_PATH_ONLY or _sign_path(net.activation, net.outputs, update.penalty):
        _sign_backward_step(X, net, rows, update, kept, out, work)
        return
    # the parallel region is one call per block: its body compiles once, as a plain function
    for blk in prange((rows.count + BLOCK - 1) // BLOCK):
        _backward_block(X, net, rows, update, kept, out, work, np.int64(blk),
                        numba.get_thread_id())


# ``reassoc`` lets the per-neuron sums over the batch vectorise (a strict left-to-right sum is
# bound by the add latency); the order is fixed at compile time, so results still do not
# depend on the thread count.
@njit(cache=True, fastmath={"reassoc"})
def _backward_block(X, net, rows, update, kept, out, work, blk, t):
    """Block ``blk`` of :func:`_backward_step` (off the sign path) on the scratch slot ``t``."""
    Z, Zt, K, has_bias, act = net.inputs, net.inputs_t, net.outputs, net.bias, net.activation
    step, penalty, residual = update
    pre, pre_index = kept.pre, kept.index
    d, batch = Zt.shape
    recompute = pre_index.shape[0] == 0
    start = blk * BLOCK
    k = min(BLOCK, rows.count - start)
    block_pre = _view(_slot(work.block_pre, t), BLOCK, batch)
    value = _slot(work.value, t)[:batch]
    scratch = _slot(work.scratch, t)[:batch]
    grad_pre = _view(_slot(work.grad_pre, t), BLOCK, batch)
    grad_a = _view(_slot(work.grad_a, t), BLOCK, K)
    grad_b = _slot(work.grad_b, t)
    grad_w = _view(_slot(work.grad_w, t), BLOCK, d)
    if recompute:
        _gather_pre_activations(X, net, rows.index, start, k,
                                _view(_slot(work.gathered, t), BLOCK, d), block_pre)
    for r in range(k):
        i = rows.index[start + r]
        row = block_pre[r] if recompute else pre[pre_index[start + r]]
        grad_b[r] = _row_coefficients(act, row, value, grad_pre[r], X[i, :K], penalty,
                                      residual, scratch, grad_a[r])
    np.dot(grad_pre[:k], Z, grad_w[:k])
    _apply_block(out, rows.index, start, k, step, Gradients(grad_a, grad_w, grad_b), has_bias)
