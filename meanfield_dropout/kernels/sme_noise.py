"""Kernels of the SME's gradient noise: the covariance Σ(θ), its factors and its draws.

With c = (1 − p)/p, u_k = ∇_{q_k} L_S and M_kr = (1/n) Σ_i J_{k,i}ᵀ φ_{r,i} (Zhang, Li, Luo &
Xu 2024; J_{k,i} = ∂φ_{k,i}/∂q_k) the covariance of the dropout gradient is
Σ = c A1 A1ᵀ + c² A2 A2ᵀ (columns of A1: u_k or M_kj; of A2: pairs k < r). ``blocks`` and
``net`` are as in :mod:`.sme_model`.

* :func:`_parts`: u and M; M_kr = κ² Dφ_kᵀ(φ_r/n) for all k at once is one core backward
  with the residual φ_r/n;
* :func:`_dense_covariance`, :func:`_factor`: Σ as a dense (D, D) array, and A1, A2;
* :func:`_noise_residuals`: the per-neuron pseudo-residuals whose back-propagation is the
  drift −∇L_S and a draw of Σ^(1/2) Z, with standard Gaussians z_k, Z_kr in place of the
  mask chaos ξ_k → √c z_k, ξ_k ξ_r → c Z_kr;
* :func:`_noise_samples`: draws of Σ^(1/2) Z without any D × D matrix
  (:func:`~.second_order._jacobian_transpose`).
"""
import numpy as np
from numba import njit

from .core import _backward_update
from .rows import _all_features
from .second_order import _jacobian_transpose
from .structs import Kept, Rows, Update
from .sme_model import _gradient_into, _unmasked_residual


@njit(cache=True)
def _parts(net, blocks):
    """u (width, K + d) and M (width, width, K + d) with M[k, k] = 0."""
    width, block = blocks.shape
    K, n_samples = net.data.targets.shape
    pre = np.empty((width, n_samples), dtype=blocks.dtype)
    residual = np.empty((K, n_samples), dtype=blocks.dtype)
    _unmasked_residual(net, blocks, pre, residual)
    u = np.empty_like(blocks)
    _gradient_into(net, blocks, pre, residual, u)
    features = _all_features(blocks, net.data)
    rows = Rows(np.arange(width), width)
    kept = Kept(pre, np.empty((0, 0), dtype=np.uint8), rows.index)
    by_source = np.zeros((width, width, block), dtype=blocks.dtype)  # [r, k] = M_kr
    for r in range(width):
        _backward_update(blocks, net.data, rows,
                         Update(-net.scale * net.scale, 0.0, features[r] / n_samples), kept,
                         by_source[r])
    M = np.zeros_like(by_source)
    for k in range(width):
        for r in range(width):
            if r != k:
                M[k, r] = by_source[r, k]
    return u, M




@njit(cache=True)
def _dense_covariance(u, M, variance):
    """Σ = c A1 A1ᵀ + c² A2 A2ᵀ as a dense (D, D) array (c = ``variance``)."""
    width, block = u.shape
    A1 = np.empty((width * block, width))
    for k in range(width):
        for j in range(width):
            A1[k * block:(k + 1) * block, j] = u[k] if j == k else M[k, j]
    sigma = variance * np.dot(A1, A1.T)
    c2 = variance * variance
    for k in range(width):
        lo, hi = k * block, (k + 1) * block
        sigma[lo:hi, lo:hi] += c2 * np.dot(M[k].T, M[k])
        for r in range(width):
            if r != k:
                sigma[lo:hi, r * block:(r + 1) * block] += c2 * np.outer(M[k, r], M[r, k])
    return sigma


@njit(cache=True)
def _factor(u, M):
    """A1 (D, width) and A2 (D, width(width − 1)/2), pairs (k, r), k < r, row-major."""
    width, block = u.shape
    A1 = np.empty((width * block, width))
    A2 = np.zeros((width * block, width * (width - 1) // 2))
    col = 0
    for k in range(width):
        for j in range(width):
            A1[k * block:(k + 1) * block, j] = u[k] if j == k else M[k, j]
        for r in range(k + 1, width):
            A2[k * block:(k + 1) * block, col] = M[k, r]
            A2[r * block:(r + 1) * block, col] = M[r, k]
            col += 1
    return A1, A2


@njit(cache=True)
def _noise_residuals(net, features, residual, z, G, drift_weight, noise_weight, out):
    """Per-neuron residuals R_k = drift_weight e_k + noise_weight N_k into ``out``.

    e_k = r + λ φ_k/n is the residual whose back-propagation κ Dφ_kᵀ e_k is ∇_{q_k} L_S and
    N_k = √c z_k e_k + (κ/n) Σ_{r≠k} W_kr φ_r the one whose back-propagation is one draw of
    Σ^(1/2) Z, W_kr = √c z_r + c G_{min(k,r), max(k,r)} (z (width,) and the upper triangle
    of G (width, width) standard Gaussians). ``features`` are core's φ and ``out`` has their
    shape (width, K, n_samples).
    """
    width = features.shape[0]
    K, n_samples = residual.shape
    root = np.sqrt(net.variance)
    own = np.empty(width)
    mixing = np.empty((width, width))  # R = mixing @ φ + own ⊗ r
    for k in range(width):
        own[k] = drift_weight + noise_weight * root * z[k]
        for r in range(width):
            pair = root * z[r] + net.variance * G[min(k, r), max(k, r)]
            mixing[k, r] = own[k] * net.penalty / n_samples if r == k else \
                noise_weight * net.scale / n_samples * pair
    np.dot(mixing, features.reshape(width, K * n_samples), out.reshape(width, K * n_samples))
    for k in range(width):
        for c in range(K):
            for j in range(n_samples):
                out[k, c, j] += own[k] * residual[c, j]


@njit(cache=True)
def _noise_samples(net, blocks, z, G, out):
    """out[j] = one draw of Σ^(1/2) Z (blocks) for the Gaussians z[j], G[j]."""
    width = blocks.shape[0]
    K, n_samples = net.data.targets.shape
    pre = np.empty((width, n_samples), dtype=blocks.dtype)
    residual = np.empty((K, n_samples), dtype=blocks.dtype)
    _unmasked_residual(net, blocks, pre, residual)
    features = _all_features(blocks, net.data)
    pseudo = np.empty_like(features)
    rows = Rows(np.arange(width), width)
    kept = Kept(pre, np.empty((0, 0), dtype=np.uint8), rows.index)
    for j in range(z.shape[0]):
        _noise_residuals(net, features, residual, z[j], G[j], 0.0, 1.0, pseudo)
        out[j] = 0.0
        _jacobian_transpose(blocks, net.data, rows, -net.scale, pseudo, kept, out[j])
