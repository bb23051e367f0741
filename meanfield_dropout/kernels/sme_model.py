"""Kernels of the SME network at fixed width: forward pass, dropout gradients, L_S and H v.

The network of Zhang, Li, Luo & Xu (2024) is f(x; δ) = κ Σ_r δ_r a_r σ(w_r·x) with m hidden
units (``width``), K outputs, output scale κ and mask entries δ_r ∈ {0, 1/p}, p the keep
probability, on n samples. Its parameters are the neuron-major blocks q_r = (a_r, w_r), passed
as ``blocks`` of shape (width, K + d): the particles of :mod:`.core` without a bias, with
core's φ_r = a_r σ(w_r·x) (the SME's φ_{r,i} is κ times it). ``net`` is the problem as the
kernels read it (``meanfield_dropout.sme.model._Net``: the network data, κ,
c = (1 − p)/p, the penalty λ = cκ and 1/p). On the core kernels:

* :func:`_unmasked_residual`: r = (f − y)/n of the unmasked network;
* :func:`_gradient_into`, :func:`_gradient`: ∇_{q_r} L_S = κ Dφ_rᵀ(r + λ φ_r/n), the core
  backward with the per-neuron penalty λ;
* :func:`_dropout_update`, :func:`_dropout_replicas`: ∇R^drop(θ; δ) = κ δ_r Dφ_rᵀ r(δ), or a
  dropout step θ ← θ − η ∇R^drop(θ; δ), for one mask or one mask per replica;
* :func:`_modified_loss`: L_S = R_S + (c/2n) Σ_i Σ_r |φ_{r,i}|² (R_S for penalty 0);
* :func:`_hvp`, :func:`_dense_hessian_kernel`: H v for the Hessian H of L_S
  (:func:`~.second_order._hessian_vector_product`), and the dense H column by column.
"""
import numpy as np
from numba import njit

from .core import LOSSES, _backward_update, _forward, _loss_derivative, _loss_value, _predict
from .rows import _all_features
from .second_order import _hessian_vector_product
from .structs import Kept, Rows, Update, Weights
from .variants import _active_rows

_SQUARE = LOSSES["square"]


@njit(cache=True)
def _unmasked_residual(net, blocks, pre, residual):
    """r = (f − y)/n of the unmasked network; stores the pre-activations of every unit in pre."""
    width = blocks.shape[0]
    f = np.empty(residual.shape, dtype=blocks.dtype)
    _forward(blocks, net.data, Rows(np.arange(width), width), Weights(1.0, net.scale, width),
             pre, f)
    _loss_derivative(_SQUARE, f, net.data.targets, residual)


@njit(cache=True)
def _gradient_into(net, blocks, pre, residual, out):
    """out = ∇L_S (blocks), from stored pre-activations and the unmasked residual."""
    rows = np.arange(blocks.shape[0])
    out[:] = 0.0
    _backward_update(blocks, net.data, Rows(rows, rows.shape[0]),
                     Update(-net.scale, net.penalty, residual),
                     Kept(pre, np.empty((0, 0), dtype=np.uint8), rows), out)


@njit(cache=True)
def _gradient(net, blocks):
    """∇L_S as (width, K + d) blocks."""
    pre = np.empty((blocks.shape[0], net.data.inputs.shape[0]), dtype=blocks.dtype)
    residual = np.empty(net.data.targets.shape, dtype=blocks.dtype)
    _unmasked_residual(net, blocks, pre, residual)
    out = np.empty_like(blocks)
    _gradient_into(net, blocks, pre, residual, out)
    return out


@njit(cache=True)
def _dropout_update(net, blocks, rows, bounds, weights, step, pre, out):
    """out_r −= step · δ_r Dφ_rᵀ (f(·; δ) − y)/n for the dropout network of mask δ.

    Units ``rows[bounds[g]:bounds[g + 1]]`` carry the mask value ``weights[g]`` (one group,
    weight 1/p, for a dropout mask); the others are dropped. With ``out`` = ``blocks`` and
    step = ηκ this is a dropout step; with ``out`` = 0 and step = −κ it writes ∇R^drop.
    """
    K, n_samples = net.data.targets.shape
    f = np.zeros((K, n_samples), dtype=blocks.dtype)
    part = np.empty((K, n_samples), dtype=blocks.dtype)
    for g in range(weights.shape[0]):
        start, count = bounds[g], bounds[g + 1] - bounds[g]
        _forward(blocks, net.data, Rows(rows[start:], count),
                 Weights(weights[g], net.scale, count), pre[start:],
                 f if weights.shape[0] == 1 else part)
        if weights.shape[0] > 1:
            f += part
    residual = np.empty((K, n_samples), dtype=blocks.dtype)
    _loss_derivative(_SQUARE, f, net.data.targets, residual)
    ranks = np.arange(blocks.shape[0])
    no_signs = np.empty((0, 0), dtype=np.uint8)
    for g in range(weights.shape[0]):
        start = bounds[g]
        _backward_update(blocks, net.data, Rows(rows[start:], bounds[g + 1] - start),
                         Update(step * weights[g], 0.0, residual),
                         Kept(pre, no_signs, ranks[start:]), out)


@njit(cache=True)
def _dropout_replicas(net, sources, keep, step, out):
    """For every mask j, :func:`_dropout_update` of ``sources[j]`` (of ``sources[0]`` when it
    holds one source) with the kept rows ``keep[j]`` (weight 1/p) into ``out[j]``: dropout
    steps of replicas with ``out`` = ``sources`` and step = ηκ, or ∇R^drop(θ; δ_j) of one θ
    with ``out`` = 0 and step = −κ."""
    width, n_samples = out.shape[1], net.data.inputs.shape[0]
    pre = np.empty((width, n_samples), dtype=out.dtype)
    rows = np.empty(width, dtype=np.int64)
    bounds = np.zeros(2, dtype=np.int64)
    weights = np.full(1, net.inverse_keep)
    for j in range(keep.shape[0]):
        bounds[1] = _active_rows(keep[j], rows)
        _dropout_update(net, sources[j if sources.shape[0] > 1 else 0], rows, bounds, weights,
                        step, pre, out[j])


@njit(cache=True)
def _modified_loss(net, blocks, penalty):
    """R_S + (penalty κ/2n) Σ_i Σ_r |a_r σ(w_r·x_i)|² (L_S for penalty λ = cκ, R_S for 0)."""
    f = _predict(blocks, net.data, net.scale)
    value = _loss_value(_SQUARE, f, net.data.targets)
    if penalty == 0.0:
        return value
    features = _all_features(blocks, net.data)
    return value + 0.5 * penalty * net.scale * np.sum(features * features) / f.shape[1]


@njit(cache=True)
def _hvp(net, blocks, direction, out):
    """out = H v as (width, K + d) blocks for v given as blocks (α_k, β_k)."""
    _hessian_vector_product(blocks, direction, net.data, net.scale, net.penalty, out)


@njit(cache=True)
def _dense_hessian_kernel(net, blocks):
    """H of L_S as a dense (D, D) array, column by column: H e_j for the unit vectors e_j."""
    width, block = blocks.shape
    H = np.empty((width * block, width * block), dtype=blocks.dtype)
    unit = np.zeros_like(blocks)
    column = np.empty_like(blocks)
    for k in range(width):
        for p in range(block):
            unit[k, p] = 1.0
            _hvp(net, blocks, unit, column)
            unit[k, p] = 0.0
            H[:, k * block + p] = column.ravel()
    return H
