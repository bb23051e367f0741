"""Kernels of the SME runs: dropout, gradient descent on L_S and Euler–Maruyama SME steps.

Every kernel advances or reads ``repeats`` replicas θ_j at once, ``thetas`` of shape
(repeats, width, K + d) (blocks and ``net`` as in :mod:`.sme_model`):

* :func:`_gd_kernel`: θ_j ← θ_j − η ∇L_S(θ_j) (its ``step`` is ηκ);
* :func:`_sme_kernel`: one Euler–Maruyama step of Theorem 1 of Zhang, Li, Luo & Xu (2024),
  Θ ← Θ + h b(Θ) + √(hη) Σ(Θ)^(1/2) Z with b = −∇L_S (order 1) or
  b = −∇L_S − (η/2) H ∇L_S (order 2);
* :func:`_losses_kernel`: R_S(θ_j) of every replica;
* :func:`_first_bad`: the first replica that left the finite range.

The dropout steps are :func:`~.sme_model._dropout_replicas`.
"""
import numpy as np
from numba import njit

from .core import _backward_update, _loss_derivative
from .rows import _all_features
from .second_order import _jacobian_transpose
from .structs import Kept, Rows, Update
from .sme_model import _SQUARE, _hvp, _modified_loss, _unmasked_residual
from .sme_noise import _noise_residuals


@njit(cache=True)
def _first_bad(thetas, bound):
    """Index of the first replica with a non-finite or huge entry, or -1."""
    for j in range(thetas.shape[0]):
        for k in range(thetas.shape[1]):
            for l in range(thetas.shape[2]):
                v = thetas[j, k, l]
                if not (abs(v) < bound):
                    return j
    return -1




@njit(cache=True)
def _gd_kernel(net, thetas, step):
    """θ_j ← θ_j − (step/κ) ∇L_S(θ_j) for every replica j."""
    width, n_samples = thetas.shape[1], net.data.inputs.shape[0]
    pre = np.empty((width, n_samples), dtype=thetas.dtype)
    residual = np.empty(net.data.targets.shape, dtype=thetas.dtype)
    rows = Rows(np.arange(width), width)
    kept = Kept(pre, np.empty((0, 0), dtype=np.uint8), rows.index)
    for j in range(thetas.shape[0]):
        _unmasked_residual(net, thetas[j], pre, residual)
        _backward_update(thetas[j], net.data, rows, Update(step, net.penalty, residual), kept,
                         thetas[j])




@njit(cache=True)
def _sme_kernel(net, thetas, lr, h, order, z, G):
    """One Euler-Maruyama step of the order-1 or order-2 SME for every replica (in place).

    Θ ← Θ − h ∇L_S + √(hη) Σ^(1/2) Z is one per-neuron back-propagation of the residuals
    −h e_k + √(hη) N_k (:func:`~.sme_noise._noise_residuals`), for the units of all
    replicas at once (the rows of ``thetas`` reshaped to (runs · width, K + d)); order 2
    subtracts (hη/2) H ∇L_S. f = κ Σ_r φ_r is summed from the core features.
    """
    runs, width, block = thetas.shape
    K, n_samples = net.data.targets.shape
    units = thetas.reshape(runs * width, block)
    rows = Rows(np.arange(runs * width), runs * width)
    # no kept pre-activations: the back-propagations recompute them
    recompute = Kept(np.empty((0, n_samples), dtype=thetas.dtype),
                     np.empty((0, 0), dtype=np.uint8), np.empty(0, dtype=np.int64))
    features = _all_features(units, net.data)
    residuals = np.empty((runs, K, n_samples), dtype=thetas.dtype)
    for j in range(runs):
        f = net.scale * features[j * width:(j + 1) * width].sum(axis=0)
        _loss_derivative(_SQUARE, f, net.data.targets, residuals[j])
    pseudo = np.empty_like(features)
    if order == 2:
        for j in range(runs):
            _noise_residuals(net, features[j * width:(j + 1) * width], residuals[j], z[j],
                             G[j], 1.0, 0.0, pseudo[j * width:(j + 1) * width])
        grads = np.zeros_like(units)
        _jacobian_transpose(units, net.data, rows, -net.scale, pseudo, recompute, grads)
        curvature = np.empty_like(thetas)
        for j in range(runs):
            _hvp(net, thetas[j], grads[j * width:(j + 1) * width], curvature[j])
    noise_scale = np.sqrt(h * lr)
    for j in range(runs):
        _noise_residuals(net, features[j * width:(j + 1) * width], residuals[j], z[j], G[j],
                         -h, noise_scale, pseudo[j * width:(j + 1) * width])
    _jacobian_transpose(units, net.data, rows, -net.scale, pseudo, recompute, units)
    if order == 2:
        thetas -= (0.5 * h * lr) * curvature




@njit(cache=True)
def _losses_kernel(net, thetas):
    """R_S of every replica."""
    out = np.empty(thetas.shape[0])
    for j in range(thetas.shape[0]):
        out[j] = _modified_loss(net, thetas[j], 0.0)
    return out
