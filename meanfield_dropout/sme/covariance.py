"""Covariance Σ(θ) of the dropout gradient noise: dense formula and Gaussian sampler.

With c = (1 − p)/p, u_k = ∇_{q_k} L_S and M_kr = (1/n) Σ_i J_{k,i}ᵀ φ_{r,i} (Zhang, Li, Luo &
Xu 2024; J_{k,i} = ∂φ_{k,i}/∂q_k), the exact covariance is

    Σ = c A1 A1ᵀ + c² A2 A2ᵀ,

where column j of A1 has block k equal to u_k (k = j) or M_kj (k ≠ j), and column (k, r) of
A2 holds M_kr in block k and M_rk in block r. :func:`noise_covariance` assembles it densely;
:func:`sample_noise` draws N(0, Σ) without forming any D × D matrix, by replacing the mask
chaos ξ_k → √c z_k and ξ_k ξ_r → c Z_kr with standard Gaussians z, Z.

On the core layer: M_kr = κ² Dφ_kᵀ(φ_r/n) for all k at once is one core backward with the
residual φ_r/n (core's φ_r = a_r σ(w_r·x)), and one draw is κ Dφ_kᵀ N_k with the per-neuron
pseudo-residual N_k = √c z_k (r + λ φ_k/n) + (κ/n) Σ_{r≠k} W_kr φ_r, W_kr = √c z_r + c Z_kr
(:func:`~meanfield_dropout.kernels.second_order._jacobian_transpose`).
"""
import numpy as np
from numba import njit

from ..runtime.memory import announce_cost
from ..validation import check_array, check_int
from ..warmup import run_kernel
from ..kernels.core import _backward_update
from ..kernels.rows import _all_features
from ..kernels.second_order import _jacobian_transpose
from .cost import covariance_seconds, empirical_covariance_seconds, sample_noise_seconds
from .model import (_dropout_replicas, _gradient_into, _kernel_threads, _unmasked_residual,
                    draw_keep)

#: Largest D for which a dense D x D covariance is formed.
MAX_DENSE_PARAMS = 4000


def check_dense_size(problem, max_params=MAX_DENSE_PARAMS):
    """Refuse dense D x D matrices above ``max_params`` parameters."""
    if problem.n_params > max_params:
        raise ValueError(
            f"dense covariance/Hessian needs D = width*(K+d) <= {max_params}, got "
            f"D = {problem.n_params}; reduce width or use sample_noise (matrix-free)")


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
    features = _all_features(blocks, net.data.inputs_t, K, False, net.data.activation)
    rows = np.arange(width)
    by_source = np.zeros((width, width, block), dtype=blocks.dtype)  # [r, k] = M_kr
    for r in range(width):
        _backward_update(blocks, rows, width, -net.scale * net.scale, 0.0,
                         features[r] / n_samples, net.data.inputs, net.data.inputs_t, K, False,
                         net.data.activation, pre, rows, by_source[r])
    M = np.zeros_like(by_source)
    for k in range(width):
        for r in range(width):
            if r != k:
                M[k, r] = by_source[r, k]
    return u, M


def _noise_parts(problem, blocks):
    """u = ∇L_S (width, K + d) and M (width, width, K + d), M_kk = 0, for θ's blocks."""
    with _kernel_threads(problem) as net:
        return run_kernel(_parts, (net, blocks), "sme", blocks.dtype.name)


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
    features = _all_features(blocks, net.data.inputs_t, K, False, net.data.activation)
    pseudo = np.empty_like(features)
    rows = np.arange(width)
    for j in range(z.shape[0]):
        _noise_residuals(net, features, residual, z[j], G[j], 0.0, 1.0, pseudo)
        out[j] = 0.0
        _jacobian_transpose(blocks, rows, width, -net.scale, pseudo, net.data.inputs,
                            net.data.inputs_t, K, False, net.data.activation, pre, rows, out[j])


def noise_covariance(problem, params, max_params=MAX_DENSE_PARAMS):
    """Exact covariance Σ(θ) = Cov_δ[∇R^drop(θ; δ)] as a dense matrix.

    Parameters
    ----------
    problem : DropoutProblem
    params : array_like, shape (D,)
    max_params : int
        Refuse (``ValueError``) when D exceeds this; use :func:`sample_noise` instead.

    Returns
    -------
    ndarray, shape (D, D)
        Symmetric positive semi-definite, rank <= min(D, m(m+1)/2).
    """
    check_dense_size(problem, max_params)
    blocks = problem.blocks(params)
    announce_cost(covariance_seconds(problem), f"noise_covariance of D = {problem.n_params}")
    sigma = _dense_covariance(*_noise_parts(problem, blocks), problem.penalty)
    return 0.5 * (sigma + sigma.T)


def noise_factor(problem, params):
    """Exact factors of Σ = c A1 A1ᵀ + c² A2 A2ᵀ (Zhang, Li, Luo & Xu 2024).

    The centred dropout gradient is exactly A1 ξ + A2 (ξ_k ξ_r)_{k<r} with ξ = δ − 1.

    Returns
    -------
    A1 : ndarray, shape (D, width)
    A2 : ndarray, shape (D, width (width − 1)/2)
        Columns ordered by pairs (k, r), k < r, row-major (``np.triu_indices(width, 1)``).
    """
    return _factor(*_noise_parts(problem, problem.blocks(params)))


def draw_standard_normals(rng, width, size):
    """Gaussians (z, G) of shapes (size, width), (size, width, width) for the noise draws."""
    return rng.standard_normal((size, width)), rng.standard_normal((size, width, width))


def noise_from_normals(problem, params, z, pairs):
    """The matrix-free N(0, Σ) draw, applied to given Gaussians.

    Linear in (z, pairs) at fixed θ, so the same Gaussians can drive several processes
    (common random numbers).

    Parameters
    ----------
    problem : DropoutProblem
    params : array_like, shape (D,)
    z : array_like, shape (width,)
        Standard normals for the first-order chaos ξ_k.
    pairs : array_like, shape (width, width)
        Standard normals; only the strict upper triangle is used (second-order chaos
        ξ_k ξ_r, k < r).

    Returns
    -------
    ndarray, shape (D,)
    """
    blocks = problem.blocks(params)
    width = problem.width
    z = check_array(z, "z", 1, shape=(width,))
    pairs = check_array(pairs, "pairs", 2, shape=(width, width))
    out = np.empty((1,) + blocks.shape)
    with _kernel_threads(problem) as net:
        run_kernel(_noise_samples, (net, blocks, z[None], pairs[None], out), "sme",
                   blocks.dtype.name)
    return out.ravel()


def sample_noise(problem, params, n_draws, seed=0):
    """Draws from N(0, Σ(θ)), exact in law, never forming a D × D matrix.

    Each draw costs O(n m² K + n m (K + d)), about one dropout gradient.

    Parameters
    ----------
    problem : DropoutProblem
    params : array_like, shape (D,)
    n_draws : int
        Number of draws (>= 1).
    seed : int

    Returns
    -------
    ndarray, shape (n_draws, D)
    """
    n_draws = check_int(n_draws, "n_draws", low=1)
    rng = np.random.default_rng(np.random.SeedSequence(check_int(seed, "seed", low=0)))
    blocks = problem.blocks(params)
    announce_cost(sample_noise_seconds(problem, n_draws), f"sample_noise of {n_draws} draws")
    z, G = draw_standard_normals(rng, problem.width, n_draws)
    out = np.empty((n_draws,) + blocks.shape)
    with _kernel_threads(problem) as net:
        run_kernel(_noise_samples, (net, blocks, z, G, out), "sme", blocks.dtype.name)
    return out.reshape(n_draws, problem.n_params)


def dropout_gradients(problem, params, n_masks, seed=0):
    """Dropout gradients ∇R^drop(θ; δ) for ``n_masks`` fresh masks, shape (n_masks, D)."""
    n_masks = check_int(n_masks, "n_masks", low=2)
    rng = np.random.default_rng(np.random.SeedSequence(check_int(seed, "seed", low=0)))
    blocks = problem.blocks(params)
    keep = draw_keep(rng, problem.keep_prob, (n_masks, problem.width))
    out = np.zeros((n_masks,) + blocks.shape)
    with _kernel_threads(problem) as net:
        run_kernel(_dropout_replicas, (net, blocks[None], keep, -net.scale, out), "sme",
                   blocks.dtype.name)
    return out.reshape(n_masks, problem.n_params)


def empirical_covariance(problem, params, n_masks, seed=0, max_params=MAX_DENSE_PARAMS):
    """Sample covariance of dropout gradients over ``n_masks`` fresh masks (the paper's D_grad).

    Returns
    -------
    ndarray, shape (D, D)
        Unbiased sample covariance (divisor n_masks - 1).
    """
    check_dense_size(problem, max_params)
    announce_cost(empirical_covariance_seconds(problem, check_int(n_masks, "n_masks", low=2)),
                  f"empirical_covariance of {n_masks} masks")
    grads = dropout_gradients(problem, params, n_masks, seed)
    centred = grads - grads.mean(axis=0)
    return centred.T @ centred / (grads.shape[0] - 1)
