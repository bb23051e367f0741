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
one row with plain loops (:func:`_row_step_activated`, a ring of a jump limit). For ReLU with
one output and no penalty (the papers' experiments) the blocked step takes the sign path
(:func:`_sign_path`): both parts come from G_i = Σ_j 1[u_ij > 0] r_j (z_j, 1), one product of
the 0/1 signs with the data, so the forward pass keeps one byte per pre-activation.

Second order (:mod:`meanfield_dropout.second_order`): the masked-row step with a residual of
its own for every neuron, and exact Hessian–vector products of the penalised loss
L = loss(f) + (λ s/2B) Σ_i Σ_j |φ(x_i, z_j)|², on the kernels of this module.

Blocks run on Numba threads; the forward sums are reduced in block order and each row's update
depends only on its own parameters and r, so results do not depend on the thread count. Keep
BLAS to one thread while these kernels run (:func:`meanfield_dropout.network.blas_single_thread`).
"""
import math
from typing import NamedTuple

import numba
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


class Workspace(NamedTuple):
    """Scratch of the blocked kernels, allocated once per run (:func:`make_workspace`).

    Each field is a flat buffer per slot or per block (the forward slabs); a kernel views
    the part it needs for the current batch size. Slots are threads (indexed by
    ``numba.get_thread_id()``). The one-call workspace of :func:`_forward` and
    :func:`_backward_update` has no slots: each block then allocates its own scratch.
    Every block overwrites what it uses, so results do not depend on which thread ran which
    block. Allocating this scratch per block instead (hundreds of kilobytes at B = 500)
    cost page faults that doubled the time of a forward pass.
    """

    gathered: np.ndarray     # (T, BLOCK·d)  input weights of a block
    block_pre: np.ndarray    # (T, BLOCK·B)  pre-activations of a block
    value: np.ndarray        # (T, BLOCK·B)  activations of a block
    grad_pre: np.ndarray     # (T, BLOCK·B)  σ'(u)(a·e) of a block
    coef: np.ndarray         # (T, K·BLOCK)  weighted output weights
    plain_coef: np.ndarray   # (T, K·BLOCK)  unweighted output weights
    grad_a: np.ndarray       # (T, BLOCK·K)
    grad_b: np.ndarray       # (T, BLOCK)
    grad_w: np.ndarray       # (T, BLOCK·d)
    scratch: np.ndarray      # (T, B)
    input_sums: np.ndarray   # (T, BLOCK·(d + 1))  G of the sign path, per block
    weighted_inputs: np.ndarray  # (1, B·(d + 1))  r_j (z_j, 1) of the sign path
    slabs: np.ndarray        # (blocks, K·B) per-block forward sums
    plain_slabs: np.ndarray  # (blocks, K·B) per-block unweighted forward sums


def make_workspace(width, outputs, dim, batch, dtype):
    """Scratch for the blocked kernels on up to ``width`` rows and ``batch`` data points.

    It has a slot for every thread Numba may start (``NUMBA_NUM_THREADS``), so it stays valid
    whatever ``numba.set_num_threads`` says later.
    """
    return _new_workspace(numba.config.NUMBA_NUM_THREADS, width, outputs, dim, batch,
                          np.empty(0, dtype=dtype))


@njit(cache=True)
def _new_workspace(slots, width, K, d, batch, like):
    """A :class:`Workspace` with ``slots`` slots, in the precision of the array ``like``."""
    blocks = max(1, (width + BLOCK - 1) // BLOCK)
    dt = like.dtype
    return Workspace(np.empty((slots, BLOCK * d), dt), np.empty((slots, BLOCK * batch), dt),
                     np.empty((slots, BLOCK * batch), dt), np.empty((slots, BLOCK * batch), dt),
                     np.empty((slots, K * BLOCK), dt), np.empty((slots, K * BLOCK), dt),
                     np.empty((slots, BLOCK * K), dt), np.empty((slots, BLOCK), dt),
                     np.empty((slots, BLOCK * d), dt), np.empty((slots, batch), dt),
                     np.empty((slots, BLOCK * (d + 1)), dt),
                     np.empty((min(slots, 1), batch * (d + 1)), dt),
                     np.empty((blocks, K * batch), dt), np.empty((blocks, K * batch), dt))


@njit(cache=True)
def _call_workspace(X, count, K, Zt):
    """A one-call workspace without slots: each block allocates its scratch (see :func:`_slot`)."""
    return _new_workspace(0, count, K, Zt.shape[0], Zt.shape[1], X[:0, 0])


@njit(cache=True)
def _slot(buffers, t):
    """Slot ``t`` of a workspace field, or a fresh buffer of its length if it has no slots."""
    if buffers.shape[0] == 0:
        return np.empty(buffers.shape[1], dtype=buffers.dtype)
    return buffers[t]


@njit(cache=True)
def _view(buffer, height, width):
    """The first height·width entries of a flat buffer as a C-contiguous (height, width) array."""
    return buffer[:height * width].reshape((height, width))


@njit(cache=True)
def _check_workspace(work, count, K, d, batch):
    """Refuse a workspace too small for this call (rows, batch, dimensions).

    A run's workspace from :func:`make_workspace` has a slot for every thread Numba can start.
    """
    if (work.scratch.shape[1] < batch or work.weighted_inputs.shape[1] < batch * (d + 1)
            or work.gathered.shape[1] < BLOCK * d or work.coef.shape[1] < K * BLOCK
            or work.slabs.shape[0] * BLOCK < count or work.slabs.shape[1] < K * batch):
        raise ValueError("workspace too small for this kernel call")


@njit(cache=True)
def _forward(X, rows, count, weight, scale, Zt, K, has_bias, act, pre, store, out):
    """out (K, B) = scale · weight · Σ_{r < count} φ(x_i, z_j), i = rows[r].

    With ``store`` the pre-activations of neuron rows[r] are kept in ``pre[r]`` for the
    backward pass (see :func:`_forward_sums`, which takes a persistent workspace).
    """
    work = _call_workspace(X, count, K, Zt)
    _forward_sums(X, rows, count, weight, scale, Zt, K, has_bias, act,
                  pre if store else pre[:0], out, out[:, :0], work,
                  np.empty((0, 0), dtype=np.uint8), count)


@njit(cache=True, parallel=True)
def _forward_sums(X, rows, count, weight, scale, Zt, K, has_bias, act, pre, out, plain,
                  work, signs, weighted_count):
    """:func:`_forward` over the rows ``rows[:weighted_count]``, and, if ``plain`` has
    columns, plain = scale · Σ_{r < count} φ(x_i, ·) over all ``count`` rows.

    ``plain`` is the sum without the mask weight: with the kept neurons first and the
    dropped ones after them, it is the unmasked predictor a loss record needs, in the same
    pass as the step's own.
    Neuron rows[r]'s pre-activations are kept in ``pre[r]`` if ``pre`` has rows, and
    their signs 1[u > 0] in ``signs[r]`` (uint8) if ``signs`` has rows: all the
    backward pass of the sign path needs (:func:`_sign_path`). ``work`` is a
    :class:`Workspace` for at least ``count`` rows. Each block sums into its own slab, its
    rows in order; slabs are added in block order.
    """
    d, batch = Zt.shape
    with_plain = plain.shape[1] > 0
    store_pre = pre.shape[0] > 0
    store_signs = signs.shape[0] > 0
    _check_workspace(work, count, K, d, batch)
    blocks = (count + BLOCK - 1) // BLOCK
    for blk in prange(blocks):
        t = numba.get_thread_id()
        start = blk * BLOCK
        k = min(BLOCK, count - start)
        value = _view(_slot(work.value, t), BLOCK, batch)
        coef = _view(_slot(work.coef, t), K, BLOCK)
        plain_coef = _view(_slot(work.plain_coef, t), K, BLOCK)
        target = pre[start:start + k] if store_pre else _view(_slot(work.block_pre, t), k, batch)
        _gather_pre_activations(X, rows, start, k, Zt, K, has_bias,
                                _view(_slot(work.gathered, t), BLOCK, d), target)
        for r in range(k):
            for c in range(K):
                coef[c, r] = scale * weight * X[rows[start + r], c] \
                    if start + r < weighted_count else 0.0
                if with_plain:
                    plain_coef[c, r] = scale * X[rows[start + r], c]
        slab = _view(work.slabs[blk], K, batch)
        plain_slab = _view(work.plain_slabs[blk], K, batch)
        kept_signs = signs[start:start + k] if store_signs else signs[:0]
        if K == 1:
            _scalar_block_sums(act, target, min(k, max(0, weighted_count - start)), k,
                               coef[0], plain_coef[0], with_plain, value[0], slab[0],
                               plain_slab[0], kept_signs)
            continue
        _store_signs(target, kept_signs)
        for r in range(k):
            _activate_row(act, target[r], value[r], value[r, :0])
        _block_sum(coef, value, k, slab)
        if with_plain:
            _block_sum(plain_coef, value, k, plain_slab)
    out[:] = 0.0
    for blk in range(blocks):
        out += _view(work.slabs[blk], K, batch)
    if with_plain:
        plain[:] = 0.0
        for blk in range(blocks):
            plain += _view(work.plain_slabs[blk], K, batch)


@njit(cache=True)
def _scalar_block_sums(act, target, weighted, k, coef, plain_coef, with_plain, value, slab,
                       plain_slab, signs):
    """slab (B,) = Σ_{r < weighted} coef[r] σ(target[r]), rows in order (one output), and
    plain_slab = Σ_{r < k} plain_coef[r] σ(target[r]) if ``with_plain``; the signs
    1[target > 0] go to ``signs`` if it has rows. ``value`` (B,) is scratch.

    Each row's activations stay in registers or cache between the activation and the sums,
    where a matrix–vector product over the block would read them back from a (k, B) tile.
    """
    slab[:] = 0.0
    if with_plain:
        plain_slab[:] = 0.0
    store = signs.shape[0] > 0
    zero = value.dtype.type(0.0)
    for r in range(k):
        c = coef[r]
        u = target[r]
        if r >= weighted:
            # a dropped neuron of a loss record: the plain sum only
            _activate_row(act, u, value, value[:0])
            c = plain_coef[r]
            for j in range(value.shape[0]):
                plain_slab[j] += c * value[j]
        elif act == 0:
            # ReLU in the same pass as the sums: u is read once
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
            for j in range(value.shape[0]):
                signs[r, j] = 1 if u[j] > zero else 0


@njit(cache=True)
def _store_signs(target, signs):
    """signs[r] = 1[target[r] > 0] for the rows of ``signs`` (none if it is empty)."""
    for r in range(signs.shape[0]):
        for j in range(signs.shape[1]):
            signs[r, j] = 1 if target[r, j] > 0.0 else 0


@njit(cache=True)
def _block_sum(coef, value, count, out):
    """out (K, B) = coef[:, :count] @ value[:count] (a matrix–vector product for K = 1)."""
    if coef.shape[0] == 1:
        np.dot(coef[0, :count], value[:count], out[0])
    else:
        np.dot(np.ascontiguousarray(coef[:, :count]), value[:count], out)


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
def _backward_update(X, rows, count, step, penalty, residual, Z, Zt, K, has_bias, act, pre,
                     pre_index, out):
    """The masked-row step: out_i ← out_i − step · Dφ(x_i)ᵀ e_i for i = rows[r], r < count.

    ``residual`` is r (K, B) with its 1/B and e_i = r + penalty · φ(x_i)/B; ``Z`` (B×d) and
    ``Zt`` (d×B) hold the batch. ``out`` is ``X`` itself for an in-place step, or another
    array of X's shape (e.g. zeros with step −1 gives the drift −Dφᵀe). The pre-activations
    of neuron rows[r] are read from ``pre[pre_index[r]]`` (stored by :func:`_forward`), or
    recomputed when ``pre_index`` is empty. :func:`_backward_step` is the same with a
    persistent workspace.
    """
    work = _call_workspace(X, count, K, Zt)
    _backward_step(X, rows, count, step, penalty, residual, Z, Zt, K, has_bias, act, pre,
                   np.empty((0, 0), dtype=np.uint8), pre_index, out, work)


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


# ``reassoc`` lets the per-neuron sums over the batch vectorise (a strict left-to-right sum is
# bound by the add latency); the order is fixed at compile time, so results still do not
# depend on the thread count.
@njit(cache=True, parallel=True, fastmath={"reassoc"})
def _backward_step(X, rows, count, step, penalty, residual, Z, Zt, K, has_bias, act, pre,
                   signs, pre_index, out, work):
    """:func:`_backward_update` with the scratch of a :class:`Workspace` ``work``.

    On the sign path (:func:`_sign_path`) neuron rows[r]'s signs are read from
    ``signs[pre_index[r]]`` if ``signs`` has rows (stored by :func:`_forward_sums`), else
    from ``pre`` as in :func:`_backward_update`, or recomputed.
    """
    d, batch = Zt.shape
    recompute = pre_index.shape[0] == 0
    _check_workspace(work, count, K, d, batch)
    blocks = (count + BLOCK - 1) // BLOCK
    if _sign_path(act, K, penalty):
        _sign_backward_step(X, rows, count, step, residual, Z, Zt, has_bias, pre, signs,
                            pre_index, out, work)
        return
    for blk in prange(blocks):
        t = numba.get_thread_id()
        start = blk * BLOCK
        k = min(BLOCK, count - start)
        block_pre = _view(_slot(work.block_pre, t), BLOCK, batch)
        value = _slot(work.value, t)[:batch]
        scratch = _slot(work.scratch, t)[:batch]
        grad_pre = _view(_slot(work.grad_pre, t), BLOCK, batch)
        grad_a = _view(_slot(work.grad_a, t), BLOCK, K)
        grad_b = _slot(work.grad_b, t)
        grad_w = _view(_slot(work.grad_w, t), BLOCK, d)
        if recompute:
            _gather_pre_activations(X, rows, start, k, Zt, K, has_bias,
                                    _view(_slot(work.gathered, t), BLOCK, d), block_pre)
        for r in range(k):
            i = rows[start + r]
            row = block_pre[r] if recompute else pre[pre_index[start + r]]
            grad_b[r] = _row_coefficients(act, row, value, grad_pre[r], X[i, :K], penalty,
                                          residual, scratch, grad_a[r])
        np.dot(grad_pre[:k], Z, grad_w[:k])
        _apply_block(out, rows, start, k, step, grad_a, grad_w, grad_b, K, d, has_bias)


@njit(cache=True, parallel=True, fastmath={"reassoc"})
def _sign_backward_step(X, rows, count, step, residual, Z, Zt, has_bias, pre, signs,
                        pre_index, out, work):
    """:func:`_backward_step` on the sign path (:func:`_sign_path`; one output, K = 1)."""
    d, batch = Zt.shape
    K = 1
    recompute = pre_index.shape[0] == 0
    blocks = (count + BLOCK - 1) // BLOCK
    d1 = d + 1 if has_bias else d
    weighted = _view(_slot(work.weighted_inputs, 0), batch, d1)
    for j in range(batch):
        for c in range(d):
            weighted[j, c] = residual[0, j] * Z[j, c]
        if has_bias:
            weighted[j, d] = residual[0, j]
    for blk in prange(blocks):
        t = numba.get_thread_id()
        start = blk * BLOCK
        k = min(BLOCK, count - start)
        tile = _view(_slot(work.grad_pre, t), k, batch)
        if recompute:
            block_pre = _view(_slot(work.block_pre, t), BLOCK, batch)
            _gather_pre_activations(X, rows, start, k, Zt, K, has_bias,
                                    _view(_slot(work.gathered, t), BLOCK, d), block_pre)
            _sign_tile(block_pre, k, tile)
        elif signs.shape[0] > 0:
            for r in range(k):
                source = signs[pre_index[start + r]]
                for j in range(batch):
                    tile[r, j] = source[j]
        else:
            for r in range(k):
                source = pre[pre_index[start + r]]
                for j in range(batch):
                    tile[r, j] = 1.0 if source[j] > 0.0 else 0.0
        sums = _view(_slot(work.input_sums, t), k, d1)
        np.dot(tile, weighted, sums)
        grad_a = _view(_slot(work.grad_a, t), BLOCK, K)
        grad_b = _slot(work.grad_b, t)
        grad_w = _view(_slot(work.grad_w, t), BLOCK, d)
        for r in range(k):
            i = rows[start + r]
            acc = sums.dtype.type(0.0)
            for c in range(d1):
                acc += X[i, K + c] * sums[r, c]
            grad_a[r, 0] = acc
            for c in range(d):
                grad_w[r, c] = X[i, 0] * sums[r, c]
            if has_bias:
                grad_b[r] = X[i, 0] * sums[r, d]
        _apply_block(out, rows, start, k, step, grad_a, grad_w, grad_b, K, d, has_bias)


@njit(cache=True)
def _sign_tile(pre, k, tile):
    """tile[:k] = 1[pre[:k] > 0] in the tile's precision."""
    one, zero = tile.dtype.type(1.0), tile.dtype.type(0.0)
    for r in range(k):
        for j in range(tile.shape[1]):
            tile[r, j] = one if pre[r, j] > zero else zero


@njit(cache=True, inline="always")
def _apply_block(out, rows, start, k, step, grad_a, grad_w, grad_b, K, d, has_bias):
    """out_i ← out_i − step · (grad_a, grad_w, grad_b)[r], i = rows[start + r], r < k."""
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
def _row_step_activated(X, i, value, grad_pre, step, penalty, residual, Zt, K, has_bias,
                        scratch, grad_a, out):
    """One-row masked step: out_i ← out_i − step · Dφ(x_i)ᵀ e_i for the single neuron i.

    The same arithmetic as one row of :func:`_backward_update`, with the products with the
    data as plain loops (one row is too small for BLAS), from neuron i's σ(u) in ``value``
    (read) and σ'(u) in ``grad_pre`` (overwritten), as the jump limits keep them
    (:func:`_row_features_kept`). ``scratch`` (B,) and ``grad_a`` (K,) are scratch (so a
    loop of rings allocates nothing) and must not alias anything else.
    """
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
def _row_features(X, i, Zt, K, has_bias, act, pre, out):
    """out (K, B) = φ(x_i, z_j) = a_i σ(w_i·z_j + b_i) for the single neuron i."""
    _row_features_kept(X, i, Zt, K, has_bias, act, pre, out[0], pre[:0], out)


@njit(cache=True)
def _row_features_kept(X, i, Zt, K, has_bias, act, pre, value, deriv, out):
    """:func:`_row_features` that also leaves σ(u) in ``value`` and, if ``deriv`` is not
    empty, σ'(u) there (the same numbers as the activation of :func:`_row_coefficients` at
    the same parameters). ``value`` may be ``out[0]``: that row is written last."""
    _row_pre_activations(X, i, Zt, K, has_bias, pre)
    _activate_row(act, pre, value, deriv)
    for c in range(K - 1, -1, -1):
        for j in range(Zt.shape[1]):
            out[c, j] = X[i, c] * value[j]


@njit(cache=True)
def _all_features(X, Zt, K, has_bias, act, value=None, deriv=None):
    """φ(x_i, z_j) for every neuron, shape (n, K, B); with ``value`` and ``deriv`` (n, B),
    each neuron's σ(u) and σ'(u) are left there (as the jump limits keep them)."""
    n = X.shape[0]
    out = np.empty((n, K, Zt.shape[1]), dtype=X.dtype)
    pre = np.empty(Zt.shape[1], dtype=X.dtype)
    if value is None:
        for i in range(n):
            _row_features(X, i, Zt, K, has_bias, act, pre, out[i])
    else:
        for i in range(n):
            _row_features_kept(X, i, Zt, K, has_bias, act, pre, value[i], deriv[i], out[i])
    return out
