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
(:func:`~meanfield_dropout.kernels.second_order._jacobian_transpose`). The kernels are in
:mod:`meanfield_dropout.kernels.sme_noise`.
"""
import numpy as np

from ..runtime.memory import announce_cost
from ..validation import check_array, check_int
from ..runtime.compiling import run_kernel
from ..kernels.sme_model import _dropout_replicas
from ..kernels.sme_noise import _dense_covariance, _factor, _noise_samples, _parts
from .cost import covariance_seconds, empirical_covariance_seconds, sample_noise_seconds
from .model import _kernel_threads, draw_keep

#: Largest D for which a dense D x D covariance is formed.
MAX_DENSE_PARAMS = 4000


def check_dense_size(problem, max_params=MAX_DENSE_PARAMS):
    """Refuse dense D x D matrices above ``max_params`` parameters."""
    if problem.n_params > max_params:
        raise ValueError(
            f"dense covariance/Hessian needs D = width*(K+d) <= {max_params}, got "
            f"D = {problem.n_params}; reduce width or use sample_noise (matrix-free)")


def _noise_parts(problem, blocks):
    """u = ∇L_S (width, K + d) and M (width, width, K + d), M_kk = 0, for θ's blocks."""
    with _kernel_threads(problem) as net:
        return run_kernel(_parts, (net, blocks), "sme", blocks.dtype.name)


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
