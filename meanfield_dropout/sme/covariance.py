"""Covariance Sigma(theta) of the dropout gradient noise: dense formula and Gaussian sampler.

With c = (1 - p)/p, u_k = grad_{q_k} L_S and M_kr = (1/n) sum_i J_{k,i}^T phi_{r,i}
(``shared/theory/sme.md`` section 2), the exact covariance is

    Sigma = c A1 A1^T + c^2 A2 A2^T,

where column j of A1 has block k equal to u_k (k = j) or M_kj (k != j), and column (k, r) of
A2 holds M_kr in block k and M_rk in block r. :func:`noise_covariance` assembles it densely;
:func:`sample_noise` draws N(0, Sigma) without forming any D x D matrix, by replacing the mask
chaos xi_k -> sqrt(c) z_k and xi_k xi_r -> c Z_kr with standard Gaussians z, Z (section 2.3).
"""
import numpy as np
from numba import njit

from .._validate import check_array, check_int
from .model import (_activations, _backprop, _drift_coefficients, _dropout_grad, _output,
                    draw_masks)

#: Largest D for which a dense D x D covariance is formed.
MAX_DENSE_PARAMS = 4000


def check_dense_size(problem, max_params=MAX_DENSE_PARAMS):
    """Refuse dense D x D matrices above ``max_params`` parameters."""
    if problem.n_params > max_params:
        raise ValueError(
            f"dense covariance/Hessian needs D = width*(K+d) <= {max_params}, got "
            f"D = {problem.n_params}; reduce width or use sample_noise (matrix-free)")


@njit(cache=True)
def _noise_parts(X, Y, blocks, K, kappa, code, c_pen):
    """u (m, P) and M (m, m, P) with M[k, k] = 0."""
    s, ds = _activations(X, blocks, K, code)
    n, m = s.shape
    res = _output(s, blocks, K, kappa, np.ones(m)) - Y
    u = _backprop(X, s, ds, blocks, K, kappa,
                  _drift_coefficients(s, blocks, K, kappa, c_pen, res))
    A = blocks[:, :K].copy()
    gram = np.dot(s.T, s)
    out_gram = np.dot(A, A.T)
    scale = kappa * kappa / n
    M = np.zeros((m, m, blocks.shape[1]))
    for k in range(m):
        weighted = np.empty((n, m))
        for i in range(n):
            for r in range(m):
                weighted[i, r] = ds[i, k] * s[i, r]
        T = np.dot(weighted.T, X)
        for r in range(m):
            if r == k:
                continue
            for c in range(K):
                M[k, r, c] = scale * gram[k, r] * A[r, c]
            M[k, r, K:] = scale * out_gram[k, r] * T[r]
    return u, M


@njit(cache=True)
def _dense_covariance(u, M, c_pen):
    """Sigma = c A1 A1^T + c^2 A2 A2^T as a dense (D, D) array."""
    m, P = u.shape
    A1 = np.empty((m * P, m))
    for k in range(m):
        for j in range(m):
            A1[k * P:(k + 1) * P, j] = u[k] if j == k else M[k, j]
    sigma = c_pen * np.dot(A1, A1.T)
    c2 = c_pen * c_pen
    for k in range(m):
        sigma[k * P:(k + 1) * P, k * P:(k + 1) * P] += c2 * np.dot(M[k].T, M[k])
        for l in range(m):
            if l != k:
                sigma[k * P:(k + 1) * P, l * P:(l + 1) * P] += c2 * np.outer(M[k, l], M[l, k])
    return sigma


@njit(cache=True)
def _factor(u, M):
    """A1 (D, m) and A2 (D, m(m-1)/2), pairs (k, r), k < r, in row-major order."""
    m, P = u.shape
    A1 = np.empty((m * P, m))
    A2 = np.zeros((m * P, m * (m - 1) // 2))
    col = 0
    for k in range(m):
        for j in range(m):
            A1[k * P:(k + 1) * P, j] = u[k] if j == k else M[k, j]
        for r in range(k + 1, m):
            A2[k * P:(k + 1) * P, col] = M[k, r]
            A2[r * P:(r + 1) * P, col] = M[r, k]
            col += 1
    return A1, A2


@njit(cache=True)
def _noise_coefficients(s, blocks, K, kappa, c_pen, V, z, G):
    """Per-neuron pseudo-residuals whose back-propagation is one N(0, Sigma) draw.

    V is the drift coefficient e_i + c phi_{k,i}; z (m,) and the upper triangle of G (m, m)
    are standard Gaussians. W_kr = sqrt(c) z_r + c G_{min(k,r), max(k,r)}, W_kk = 0.
    """
    n, m = s.shape
    sq = np.sqrt(c_pen)
    W = np.empty((m, m))
    for k in range(m):
        for r in range(m):
            if r == k:
                W[k, r] = 0.0
            elif k < r:
                W[k, r] = sq * z[r] + c_pen * G[k, r]
            else:
                W[k, r] = sq * z[r] + c_pen * G[r, k]
    out = np.empty((n, m, K))
    scaled = np.empty((n, m))
    for c in range(K):
        for i in range(n):
            for r in range(m):
                scaled[i, r] = kappa * s[i, r] * blocks[r, c]
        mixed = np.dot(scaled, W.T)
        for i in range(n):
            for k in range(m):
                out[i, k, c] = sq * z[k] * V[i, k, c] + mixed[i, k]
    return out


@njit(cache=True)
def _noise_sample(X, Y, blocks, K, kappa, code, c_pen, z, G):
    """One draw of Sigma^(1/2) Z as (m, P) blocks."""
    s, ds = _activations(X, blocks, K, code)
    res = _output(s, blocks, K, kappa, np.ones(s.shape[1])) - Y
    V = _drift_coefficients(s, blocks, K, kappa, c_pen, res)
    return _backprop(X, s, ds, blocks, K, kappa,
                     _noise_coefficients(s, blocks, K, kappa, c_pen, V, z, G))


def noise_covariance(problem, params, max_params=MAX_DENSE_PARAMS):
    """Exact covariance Sigma(theta) = Cov_delta[grad R^drop(theta; delta)] as a dense matrix.

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
    u, M = _noise_parts(problem.inputs, problem.targets, blocks, problem.output_dim,
                        problem.kappa, problem.code, problem.penalty)
    sigma = _dense_covariance(u, M, problem.penalty)
    return 0.5 * (sigma + sigma.T)


def noise_factor(problem, params):
    """Exact factors of Sigma = c A1 A1^T + c^2 A2 A2^T (``sme.md`` section 2.3).

    The centred dropout gradient is exactly A1 xi + A2 (xi_k xi_r)_{k<r} with xi = delta - 1.

    Returns
    -------
    A1 : ndarray, shape (D, m)
    A2 : ndarray, shape (D, m(m-1)/2)
        Columns ordered by pairs (k, r), k < r, row-major (``np.triu_indices(m, 1)``).
    """
    blocks = problem.blocks(params)
    u, M = _noise_parts(problem.inputs, problem.targets, blocks, problem.output_dim,
                        problem.kappa, problem.code, problem.penalty)
    return _factor(u, M)


def draw_standard_normals(rng, width, size):
    """Gaussians (z, G) of shapes (size, m) and (size, m, m) for :func:`noise_from_normals`."""
    return rng.standard_normal((size, width)), rng.standard_normal((size, width, width))


def noise_from_normals(problem, params, z, pairs):
    """The matrix-free N(0, Sigma) draw, applied to given Gaussians.

    Linear in (z, pairs) at fixed theta, so the same Gaussians can drive several processes
    (common random numbers).

    Parameters
    ----------
    problem : DropoutProblem
    params : array_like, shape (D,)
    z : array_like, shape (m,)
        Standard normals for the first-order chaos xi_k.
    pairs : array_like, shape (m, m)
        Standard normals; only the strict upper triangle is used (second-order chaos
        xi_k xi_r, k < r).

    Returns
    -------
    ndarray, shape (D,)
    """
    blocks = problem.blocks(params)
    m = problem.width
    z = check_array(z, "z", 1, shape=(m,))
    pairs = check_array(pairs, "pairs", 2, shape=(m, m))
    return _noise_sample(problem.inputs, problem.targets, blocks, problem.output_dim,
                         problem.kappa, problem.code, problem.penalty, z, pairs).ravel()


def sample_noise(problem, params, n_samples, seed=0):
    """Draws from N(0, Sigma(theta)), exact in law, never forming a D x D matrix.

    Each draw costs O(n m^2 K + n m (K + d)), about one dropout gradient.

    Parameters
    ----------
    problem : DropoutProblem
    params : array_like, shape (D,)
    n_samples : int
        Number of draws (>= 1).
    seed : int

    Returns
    -------
    ndarray, shape (n_samples, D)
    """
    n_samples = check_int(n_samples, "n_samples", low=1)
    rng = np.random.default_rng(np.random.SeedSequence(check_int(seed, "seed", low=0)))
    blocks = problem.blocks(params)
    out = np.empty((n_samples, problem.n_params))
    z, G = draw_standard_normals(rng, problem.width, n_samples)
    for j in range(n_samples):
        out[j] = _noise_sample(problem.inputs, problem.targets, blocks, problem.output_dim,
                               problem.kappa, problem.code, problem.penalty, z[j], G[j]).ravel()
    return out


def dropout_gradients(problem, params, n_masks, seed=0):
    """Dropout gradients grad R^drop(theta; delta) for ``n_masks`` fresh masks, (n_masks, D)."""
    n_masks = check_int(n_masks, "n_masks", low=2)
    rng = np.random.default_rng(np.random.SeedSequence(check_int(seed, "seed", low=0)))
    blocks = problem.blocks(params)
    masks = draw_masks(rng, problem.keep_prob, (n_masks, problem.width))
    out = np.empty((n_masks, problem.n_params))
    for j in range(n_masks):
        out[j] = _dropout_grad(problem.inputs, problem.targets, blocks, problem.output_dim,
                               problem.kappa, problem.code, masks[j]).ravel()
    return out


def empirical_covariance(problem, params, n_masks, seed=0, max_params=MAX_DENSE_PARAMS):
    """Sample covariance of dropout gradients over ``n_masks`` fresh masks (the paper's D_grad).

    Returns
    -------
    ndarray, shape (D, D)
        Unbiased sample covariance (divisor n_masks - 1).
    """
    check_dense_size(problem, max_params)
    grads = dropout_gradients(problem, params, n_masks, seed)
    centred = grads - grads.mean(axis=0)
    return centred.T @ centred / (grads.shape[0] - 1)
