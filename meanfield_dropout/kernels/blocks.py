"""Blocks of neurons: the scratch of the blocked kernels and the two ends of a block's step.

The blocked kernels of :mod:`meanfield_dropout.kernels.core` and :mod:`meanfield_dropout.kernels.relu_signs`
work on blocks of :data:`BLOCK` neurons, one block per Numba thread at a time. A block
gathers its input weights and computes its pre-activations with one BLAS product
(:func:`_gather_pre_activations`) and, at the end of a step, moves its neurons
(:func:`_apply_block`). Their scratch lives in a :class:`Workspace`, allocated once per run.
"""
from typing import NamedTuple

import numba
import numpy as np
from numba import njit

#: Rows per block: small enough for a block's pre-activations to stay in cache.
BLOCK = 64


@njit(cache=True, inline="always")
def _gather_pre_activations(X, net, rows, start, count, gathered, out):
    """out[:count] = w_i·z_j (+ b_i) for the neurons i = rows[start:start + count] on the
    inputs of ``net`` (a :class:`~meanfield_dropout.kernels.structs.NetworkData`)."""
    Zt, K = net.inputs_t, net.outputs
    d = Zt.shape[0]
    for r in range(count):
        i = rows[start + r]
        for c in range(d):
            gathered[r, c] = X[i, K + c]
    np.dot(gathered[:count], Zt, out[:count])
    if net.bias:
        for r in range(count):
            bias = X[rows[start + r], K + d]
            for j in range(Zt.shape[1]):
                out[r, j] += bias


class Gradients(NamedTuple):
    """The parts of Dφ(x_i)ᵀ e_i of a block's rows (row r is neuron rows[start + r])."""

    grad_a: np.ndarray      # (rows, K) a-parts
    grad_w: np.ndarray      # (rows, d) w-parts
    grad_b: np.ndarray      # (rows,) b-parts (read with a bias)


@njit(cache=True, inline="always")
def _apply_block(out, rows, start, k, step, grads, has_bias):
    """out_i ← out_i − step · (grad_a, grad_w, grad_b)[r], i = rows[start + r], r < k, for the
    :class:`Gradients` ``grads``."""
    grad_a, grad_w, grad_b = grads
    K, d = grad_a.shape[1], grad_w.shape[1]
    for r in range(k):
        i = rows[start + r]
        for c in range(K):
            out[i, c] -= step * grad_a[r, c]
        for c in range(d):
            out[i, K + c] -= step * grad_w[r, c]
        if has_bias:
            out[i, K + d] -= step * grad_b[r]


class Workspace(NamedTuple):
    """Scratch of the blocked kernels, allocated once per run (:func:`make_workspace`).

    Each field is a flat buffer per slot or per block (the forward slabs); a kernel views
    the part it needs for the current batch size. Slots are threads (indexed by
    ``numba.get_thread_id()``). The one-call workspace of
    :func:`~meanfield_dropout.kernels.core._forward` and :func:`~meanfield_dropout.kernels.core._backward_update`
    has no slots: each block then allocates its own scratch.
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
    whatever ``numba.set_num_threads`` says later. Made by the Python function of
    :func:`_new_workspace` (the same arrays as the kernel's), which compiles nothing.
    """
    return _new_workspace.py_func(numba.config.NUMBA_NUM_THREADS, width, outputs, dim, batch,
                                  np.empty(0, dtype=dtype))


@njit(cache=True)
def _new_workspace(slots, width, K, d, batch, like):
    """A :class:`Workspace` with ``slots`` slots, in the precision of the array ``like``."""
    # one more block than the rows fill: a forward pass puts the rows after its weighted
    # ones in blocks of their own (:func:`~meanfield_dropout.kernels.core._forward_sums`)
    blocks = (width + BLOCK - 1) // BLOCK + 1
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


@njit(cache=True, inline="always")
def _slot(buffers, t):
    """Slot ``t`` of a workspace field, or a fresh buffer of its length if it has no slots."""
    if buffers.shape[0] == 0:
        return np.empty(buffers.shape[1], dtype=buffers.dtype)
    return buffers[t]


@njit(cache=True, inline="always")
def _view(buffer, height, width):
    """The first height·width entries of a flat buffer as a C-contiguous (height, width) array."""
    return buffer[:height * width].reshape((height, width))


@njit(cache=True, inline="always")
def _check_workspace(work, count, K, d, batch):
    """Refuse a workspace too small for this call (rows, batch, dimensions).

    A run's workspace from :func:`make_workspace` has a slot for every thread Numba can start.
    """
    if (work.scratch.shape[1] < batch or work.weighted_inputs.shape[1] < batch * (d + 1)
            or work.gathered.shape[1] < BLOCK * d or work.coef.shape[1] < K * BLOCK
            or (work.slabs.shape[0] - 1) * BLOCK < count or work.slabs.shape[1] < K * batch):
        raise ValueError("workspace too small for this kernel call")
